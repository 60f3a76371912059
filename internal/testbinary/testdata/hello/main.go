// Command hello prints a greeting and whether it was built with the race
// detector; the tests of package testbinary build it.
package main

import "fmt"

func main() { fmt.Printf("hello, race detector %v\n", raceEnabled) }
