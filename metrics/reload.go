package metrics

import (
	"strings"
	"time"
	"unicode/utf8"
)

// maxHashLen bounds the hash label of threadgate_rules_info.
const maxHashLen = 64

// ObserveReload records one load of the rules file, the first one included.
// After a success it sets threadgate_rules_last_reload_successful to 1, the
// success timestamp to at, threadgate_rules_loaded to ruleCount, and moves
// threadgate_rules_info to the one series {hash=hash}. After a failure it
// sets threadgate_rules_last_reload_successful to 0 and leaves the rest as
// it was: the previous rules stay in force.
func (m *Metrics) ObserveReload(ok bool, ruleCount int, hash string, at time.Time) {
	if !ok {
		m.reloads.WithLabelValues(resultFailure).Inc()
		m.lastReloadOK.Set(0)
		return
	}
	m.reloads.WithLabelValues(resultSuccess).Inc()
	m.lastReloadOK.Set(1)
	m.lastReloadTime.Set(float64(at.Unix()) + float64(at.Nanosecond())/1e9)
	m.rulesLoaded.Set(float64(ruleCount))
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	m.rulesInfo.Reset()
	m.rulesInfo.WithLabelValues(hashLabel(hash)).Set(1)
}

// InitRules creates the rule_fires series of the named rules at zero, so
// that a rule that never fired shows as 0 rather than missing. Names beyond
// the cap are left out. Call it after each successful load; it is optional.
func (m *Metrics) InitRules(names []string) {
	for _, n := range names {
		if v := m.ruleNames.value(n, false); v != Other {
			m.ruleFires.WithLabelValues(v)
		}
	}
}

// hashLabel makes a hash safe as a label value: valid UTF-8, at most
// maxHashLen bytes.
func hashLabel(h string) string {
	h = strings.ToValidUTF8(h, "")
	for len(h) > maxHashLen {
		_, size := utf8.DecodeLastRuneInString(h)
		h = h[:len(h)-size]
	}
	if h == "" {
		return "unknown"
	}
	return h
}
