package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// runResult is what one run of the whole measurement found.
type runResult struct {
	// ref, fwd and gw are the three targets' phases, in the order run.
	ref, fwd, gw *result
	// expected is the gateway's accepted webhooks (one echo each);
	// received the Graph calls the sink had from it by the end of the
	// drain.
	expected, received int64
	// peakRSS is the largest peak resident set of the gateway's replicas.
	peakRSS int64
	// exits are the replicas' exits after SIGTERM (nil for 0).
	exits []error
}

func (rr *runResult) targets() []*result { return []*result{rr.ref, rr.fwd, rr.gw} }

// cpuRatios are the gateway's CPU per request against the bare
// forwarder's, in one run, each read from its own processes. NaN where the
// forwarder's is not positive.
type cpuRatios struct {
	// vsForwarder divides the gateway's CPU per request by the
	// forwarder's.
	vsForwarder float64
	// withRedis is the gateway's and its redis-server's CPU per request
	// (-1 without a redis-server the tool started); withRedisVsForwarder
	// divides it by the forwarder's.
	withRedis            time.Duration
	withRedisVsForwarder float64
	// vsForwarderRun divides the gateway's CPU per request by the
	// forwarder's and the tool's (load generator and sink) during the
	// forwarder's phase: the figure issue 13's table gives for the
	// forwarder, when it ran inside the tool.
	vsForwarderRun float64
}

// ratios computes the run's cpuRatios.
func (rr *runResult) ratios() cpuRatios {
	fwd := rr.fwd.cpuPerRequest(rr.fwd.targetCPU)
	c := cpuRatios{vsForwarder: ratio(rr.gw.cpuPerRequest(rr.gw.targetCPU), fwd), withRedis: -1, withRedisVsForwarder: math.NaN(),
		vsForwarderRun: ratio(rr.gw.cpuPerRequest(rr.gw.targetCPU), fwd+rr.fwd.cpuPerRequest(rr.fwd.toolCPU))}
	if rr.gw.redisCPU >= 0 {
		c.withRedis = rr.gw.cpuPerRequest(rr.gw.targetCPU + rr.gw.redisCPU)
		c.withRedisVsForwarder = ratio(c.withRedis, fwd)
	}
	return c
}

// ratio is a/b, or NaN when b is not positive.
func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// printer writes the report as plain text or Markdown.
type printer struct {
	w        io.Writer
	markdown bool
}

// heading starts a section.
func (p *printer) heading(s string) {
	if p.markdown {
		fmt.Fprintf(p.w, "**%s**\n\n", s)
		return
	}
	fmt.Fprintln(p.w, s)
}

// table writes a table whose first column is text and whose others are
// figures (aligned right), then a blank line.
func (p *printer) table(header []string, rows [][]string) {
	if p.markdown {
		fmt.Fprintf(p.w, "| %s |\n", strings.Join(header, " | "))
		sep := []string{"---"}
		for range header[1:] {
			sep = append(sep, "---:")
		}
		fmt.Fprintf(p.w, "|%s|\n", strings.Join(sep, "|"))
		for _, row := range rows {
			fmt.Fprintf(p.w, "| %s |\n", strings.Join(row, " | "))
		}
		fmt.Fprintln(p.w)
		return
	}
	width := make([]int, len(header))
	for _, row := range append([][]string{header}, rows...) {
		for i, cell := range row {
			width[i] = max(width[i], len([]rune(cell)))
		}
	}
	for _, row := range append([][]string{header}, rows...) {
		var b strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", width[i]-len([]rune(cell)))
			if i == 0 {
				b.WriteString(cell + pad)
			} else {
				b.WriteString("  " + pad + cell)
			}
		}
		fmt.Fprintln(p.w, b.String())
	}
	fmt.Fprintln(p.w)
}

// notes writes lines of text (a list in Markdown), then a blank line.
func (p *printer) notes(lines ...string) {
	for _, l := range lines {
		if p.markdown {
			l = "- " + l
		}
		fmt.Fprintln(p.w, l)
	}
	fmt.Fprintln(p.w)
}

// count formats a count or a rate, with thousands separators in Markdown.
func (p *printer) count(v float64) string {
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	if !p.markdown {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

var tableHeader = []string{"target", "req/s", "p50", "p99", "non-2xx", "errors", "drain", "cpu/req", "tool cpu/req"}

// printSetup writes what is measured, and how, on a machine of cpus CPUs.
func printSetup(p *printer, o options, cpus int) {
	runs := "1 run"
	if o.runs > 1 {
		runs = fmt.Sprintf("%d runs, each with a fresh gateway", o.runs)
	}
	lines := []string{
		fmt.Sprintf("machine: %d CPUs, %d connections, %s per target, %d users, %s", cpus, o.conns, o.duration, o.users, runs),
		"gateway: " + gatewaySetup(o),
	}
	if o.replicas > 1 {
		lines = append(lines, fmt.Sprintf("load over the %d replicas: round-robin per connection, connection i to replica i mod %d, as an L4 load balancer spreads connections", o.replicas, o.replicas))
	}
	p.notes(lines...)
}

// gatewaySetup describes the gateway's store and processes.
func gatewaySetup(o options) string {
	switch {
	case o.redisServer != "":
		return fmt.Sprintf("on Redis, %s, on a redis-server the tool starts for each run (loopback port, temporary directory, %s)", replicasText(o.replicas), strings.Join(quoteArgs(redisArgs), " "))
	case o.redisURL != "":
		// The URL may hold a password: not printed.
		return fmt.Sprintf("on Redis, %s, on the Redis of -redis-url (nothing flushed)", replicasText(o.replicas))
	case o.dataDir:
		return "with --data-dir (durable store) in a fresh temporary directory"
	}
	return "in memory"
}

func replicasText(n int) string {
	if n == 1 {
		return "1 replica"
	}
	return fmt.Sprintf("%d replicas", n)
}

// quoteArgs quotes the empty arguments, as a shell needs them.
func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "" {
			out[i] = `""`
		}
	}
	return out
}

// printRun writes run i's table and notes.
func printRun(p *printer, o options, i int, rr *runResult) {
	if o.runs > 1 {
		p.heading(fmt.Sprintf("run %d of %d", i+1, o.runs))
	}
	var rows [][]string
	for _, r := range rr.targets() {
		drain := drainText(r.drain, o.settle)
		if !r.drained {
			drain = drainText(time.Duration(math.MaxInt64), o.settle)
		}
		rows = append(rows, []string{r.name, p.count(r.rps()), durationText(r.percentile(0.50)), durationText(r.percentile(0.99)),
			p.count(float64(r.non2xx)), p.count(float64(r.errors)), drain, perRequest(r.cpuPerRequest(r.targetCPU)), perRequest(r.cpuPerRequest(r.toolCPU))})
	}
	p.table(tableHeader, rows)

	var notes []string
	if len(rr.gw.perTarget) > 1 {
		per := make([]string, len(rr.gw.perTarget))
		for i, n := range rr.gw.perTarget {
			per[i] = p.count(float64(n))
		}
		notes = append(notes, fmt.Sprintf("requests per replica (connection i to replica i mod %d): %s", len(per), strings.Join(per, ", ")))
	}
	notes = append(notes,
		fmt.Sprintf("graph calls: expected %d (one echo per accepted webhook), received %d", rr.expected, rr.received),
		rssText(rr.peakRSS, len(rr.exits)),
		exitText(rr.exits))
	if rr.gw.redisCPU >= 0 {
		notes = append(notes, "redis-server cpu/req: "+perRequest(rr.gw.cpuPerRequest(rr.gw.redisCPU))+" (its own process, over the gateway's load and drain)")
	}
	c := rr.ratios()
	notes = append(notes, cpuRatioText+ratioText(c.vsForwarder), issueRatioText+ratioText(c.vsForwarderRun))
	if c.withRedis >= 0 {
		notes = append(notes, fmt.Sprintf("threadgate + redis-server cpu/req %s ÷ bare forwarder cpu/req: %s", perRequest(c.withRedis), ratioText(c.withRedisVsForwarder)))
	}
	notes = append(notes,
		fmt.Sprintf("threadgate/reference: req/s %.2fx, p99 %.2fx", rr.gw.rps()/rr.ref.rps(), p99Ratio(rr.gw, rr.ref)),
		fmt.Sprintf("bare forwarder/reference: req/s %.2fx, p99 %.2fx (the floor of any gateway that makes one Graph call per event here)", rr.fwd.rps()/rr.ref.rps(), p99Ratio(rr.fwd, rr.ref)))
	p.notes(notes...)
}

// issueRatioText introduces the gateway's CPU per request against the
// forwarder's run as issue 13's table measured it: the forwarder with the
// load generator and the sink, which then ran in one process.
const issueRatioText = "threadgate cpu/req ÷ (bare forwarder cpu/req + tool cpu/req in its phase), as issue 13's table measured the forwarder (its process then held the load generator and the sink too): "

// cpuRatioText introduces the gateway's CPU per request against the bare
// forwarder's.
const cpuRatioText = "threadgate cpu/req ÷ bare forwarder cpu/req (both read from their own processes, in the same run): "

func p99Ratio(r, ref *result) float64 {
	return float64(r.percentile(0.99)) / float64(max(ref.percentile(0.99), 1))
}

// printSummary writes, for several runs, each target's medians, the sums
// of its failures, and the medians of the ratios.
func printSummary(p *printer, o options, runs []*runResult) {
	p.heading(fmt.Sprintf("summary of %d runs: medians; non-2xx and errors summed", len(runs)))
	var rows [][]string
	for t := range runs[0].targets() {
		var rps, p50, p99, drain, cpu, tool []float64
		var non2xx, errs int
		for _, rr := range runs {
			r := rr.targets()[t]
			rps = append(rps, r.rps())
			p50 = append(p50, float64(r.percentile(0.50)))
			p99 = append(p99, float64(r.percentile(0.99)))
			d := float64(r.drain)
			if !r.drained {
				d = math.Inf(1)
			}
			drain = append(drain, d)
			cpu = append(cpu, float64(r.cpuPerRequest(r.targetCPU)))
			tool = append(tool, float64(r.cpuPerRequest(r.toolCPU)))
			non2xx += r.non2xx
			errs += r.errors
		}
		rows = append(rows, []string{runs[0].targets()[t].name, p.count(median(rps)), durationText(medianDuration(p50)), durationText(medianDuration(p99)),
			p.count(float64(non2xx)), p.count(float64(errs)), drainText(medianDuration(drain), o.settle), perRequest(medianDuration(cpu)), perRequest(medianDuration(tool))})
	}
	p.table(tableHeader, rows)

	var expected, received, peak int64
	var processes, failed int
	var redisCPU, withRedis, withRedisVsFwd, vsFwd, vsFwdRun, gwRPS, gwP99, fwdRPS, fwdP99 []float64
	for _, rr := range runs {
		expected += rr.expected
		received += rr.received
		peak = max(peak, rr.peakRSS)
		processes += len(rr.exits)
		for _, err := range rr.exits {
			if err != nil {
				failed++
			}
		}
		c := rr.ratios()
		if rr.gw.redisCPU >= 0 {
			redisCPU = append(redisCPU, float64(rr.gw.cpuPerRequest(rr.gw.redisCPU)))
			withRedis = append(withRedis, float64(c.withRedis))
			withRedisVsFwd = append(withRedisVsFwd, c.withRedisVsForwarder)
		}
		vsFwd = append(vsFwd, c.vsForwarder)
		vsFwdRun = append(vsFwdRun, c.vsForwarderRun)
		gwRPS = append(gwRPS, rr.gw.rps()/rr.ref.rps())
		gwP99 = append(gwP99, p99Ratio(rr.gw, rr.ref))
		fwdRPS = append(fwdRPS, rr.fwd.rps()/rr.ref.rps())
		fwdP99 = append(fwdP99, p99Ratio(rr.fwd, rr.ref))
	}
	notes := []string{
		fmt.Sprintf("graph calls over the %d runs: expected %d (one echo per accepted webhook), received %d", len(runs), expected, received),
		rssText(peak, len(runs[0].exits)) + ", the largest of any run",
		fmt.Sprintf("gateway exit after SIGTERM: %d of %d processes exited 0", processes-failed, processes),
	}
	if len(redisCPU) > 0 {
		notes = append(notes, "redis-server cpu/req: "+perRequest(medianDuration(redisCPU))+" (median)")
	}
	notes = append(notes, cpuRatioText+spreadText(vsFwd), issueRatioText+spreadText(vsFwdRun))
	if len(withRedis) > 0 {
		notes = append(notes, fmt.Sprintf("threadgate + redis-server cpu/req %s (median) ÷ bare forwarder cpu/req: %s",
			perRequest(medianDuration(withRedis)), spreadText(withRedisVsFwd)))
	}
	notes = append(notes,
		fmt.Sprintf("threadgate/reference: req/s %s, p99 %s", spreadText(gwRPS), spreadText(gwP99)),
		fmt.Sprintf("bare forwarder/reference: req/s %s, p99 %s", spreadText(fwdRPS), spreadText(fwdP99)),
		"ratios: the median of the runs' own ratios (each from one run), then their range")
	p.notes(notes...)
}

// printLegend says what the columns mean.
func printLegend(p *printer, o options) {
	cpu := "cpu/req: the CPU (user+system, from /proc/PID/stat) per request of the target's own process, over the load and the drain; each reference runs as a child process of the tool"
	if o.replicas > 1 {
		cpu += fmt.Sprintf(", and the gateway's is summed over its %d processes", o.replicas)
	}
	p.notes(
		"drain: from the end of the load until the sink had the Graph call of every accepted webhook",
		cpu,
		"tool cpu/req: the tool's own process (the load generator and the Graph API sink) per request, over the same time")
}

// perRequest formats a CPU time per request.
func perRequest(d time.Duration) string {
	return d.Round(100 * time.Nanosecond).String()
}

// durationText formats a latency.
func durationText(d time.Duration) string { return d.Round(time.Microsecond).String() }

// drainText formats a drain time; math.MaxInt64 stands for a drain that
// did not end within settle.
func drainText(d, settle time.Duration) string {
	switch {
	case d == time.Duration(math.MaxInt64):
		return "> " + settle.String()
	case d < time.Millisecond:
		return "< 1ms" // the target kept up: nothing was queued at the end
	}
	return d.Round(time.Millisecond).String()
}

// rssText reports the gateway's peak resident set.
func rssText(peak int64, replicas int) string {
	s := fmt.Sprintf("gateway peak RSS: %.1f MiB", float64(peak)/(1<<20))
	if replicas > 1 {
		s += fmt.Sprintf(" (the largest of its %d replicas)", replicas)
	}
	return s
}

// exitText reports how the replicas exited after SIGTERM.
func exitText(exits []error) string {
	var bad []string
	for i, err := range exits {
		if err != nil {
			bad = append(bad, fmt.Sprintf("replica %d: %v", i+1, err))
		}
	}
	if len(bad) == 0 {
		return "gateway exit after SIGTERM: 0"
	}
	return "gateway exit after SIGTERM: " + strings.Join(bad, "; ")
}

// ratioText formats a ratio; NaN when what it divides by is not positive
// (no CPU time read for the forwarder: /proc unreadable, or too few
// requests for a clock tick).
func ratioText(r float64) string {
	if math.IsNaN(r) {
		return "n/a (no forwarder CPU read)"
	}
	return fmt.Sprintf("%.2fx", r)
}

// spreadText formats the median of ratios and their range.
func spreadText(rs []float64) string {
	var ok []float64
	for _, r := range rs {
		if !math.IsNaN(r) {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return ratioText(math.NaN())
	}
	s := fmt.Sprintf("%.2fx (%.2f–%.2fx)", median(ok), slices.Min(ok), slices.Max(ok))
	if n := len(rs) - len(ok); n > 0 {
		s += fmt.Sprintf(", %d of %d runs n/a", n, len(rs))
	}
	return s
}

// median returns the middle value of xs (the mean of the two middle ones
// for an even count); NaN for none. +Inf counts as the largest.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianDuration is the median of durations given as float64
// nanoseconds; an infinite median is math.MaxInt64.
func medianDuration(xs []float64) time.Duration {
	m := median(xs)
	if math.IsInf(m, 1) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Round(m))
}
