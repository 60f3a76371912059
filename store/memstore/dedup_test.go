package memstore

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestDedupSetAgreesWithModel runs random remembers, expiries and lookups
// against dedupSet and a plain map of keys to expiries that forgets the
// key closest to expiry when over the bound, and checks that they agree
// after every step, and that the heap's stale items stay bounded.
func TestDedupSetAgreesWithModel(t *testing.T) {
	for _, max := range []int{1, 7, 200} {
		t.Run(fmt.Sprint("max=", max), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(max)))
			d := newDedupSet()
			model := map[string]int64{}
			used := map[int64]bool{} // distinct expiries, so that which key goes first is never a tie
			var now int64
			for step := range 20000 {
				key := fmt.Sprint("m:", rng.IntN(3*max+5))
				switch op := rng.IntN(10); {
				case op < 6:
					exp := now + 1 + rng.Int64N(1000)
					for used[exp] {
						exp++
					}
					used[exp] = true
					d.remember(key, exp, max)
					if exp > model[key] {
						model[key] = exp
					}
					for len(model) > max {
						first := ""
						for k, e := range model {
							if first == "" || e < model[first] {
								first = k
							}
						}
						delete(model, first)
					}
				case op < 8:
					now += rng.Int64N(300)
					want := 0
					for k, e := range model {
						if e <= now {
							delete(model, k)
							want++
						}
					}
					if got := d.expire(now); got != want {
						t.Fatalf("step %d: expire(%d) forgot %d keys, want %d", step, now, got, want)
					}
				default:
					e, ok := model[key]
					if got, want := d.seen(key, now), ok && e > now; got != want {
						t.Fatalf("step %d: seen(%q) = %v, want %v", step, key, got, want)
					}
				}
				if d.len() != len(model) {
					t.Fatalf("step %d: %d keys held, want %d", step, d.len(), len(model))
				}
				if len(d.byExp) > 2*len(model)+1025 {
					t.Fatalf("step %d: %d heap items for %d keys", step, len(d.byExp), len(model))
				}
			}
		})
	}
}

// TestDedupSetCompacts checks that extending the same keys over and over
// leaves a heap no larger than the compaction bound, and that the keys
// expire at their last expiry.
func TestDedupSetCompacts(t *testing.T) {
	d := newDedupSet()
	for i := range 10000 {
		d.remember(fmt.Sprint("k", i%10), int64(i+1), 100)
	}
	if len(d.byExp) > 2*10+1024 {
		t.Errorf("%d heap items for 10 keys", len(d.byExp))
	}
	if n := d.expire(9990); n != 0 {
		t.Errorf("expire(9990) forgot %d keys, want 0 (each was extended past it)", n)
	}
	if n := d.expire(10000); n != 10 {
		t.Errorf("expire(10000) forgot %d keys, want 10", n)
	}
	if len(d.byExp) != 0 {
		t.Errorf("%d heap items left", len(d.byExp))
	}
}

func BenchmarkDedupRemember(b *testing.B) {
	d := newDedupSet()
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprintf("m:mid.%d", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d.remember(keys[i%len(keys)], int64(i), 200000)
	}
}

// TestDedupSetHoldsNoPointers guards what the set is for: the map's keys
// and values and the heap's items hold no pointer, so the collector never
// scans them however many keys are kept.
func TestDedupSetHoldsNoPointers(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[keyHash](), reflect.TypeFor[int64](), reflect.TypeFor[dedupItem]()} {
		if hasPointers(typ) {
			t.Errorf("%s holds a pointer: the collector would scan every dedup key", typ)
		}
	}
}

func hasPointers(typ reflect.Type) bool {
	switch typ.Kind() {
	case reflect.Array:
		return typ.Len() > 0 && hasPointers(typ.Elem())
	case reflect.Struct:
		for f := range typ.Fields() {
			if hasPointers(f.Type) {
				return true
			}
		}
		return false
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	}
	return true
}
