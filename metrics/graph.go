package metrics

import (
	"strconv"

	"github.com/threadgate/threadgate/messenger"
)

// Values of the code label of threadgate_graph_requests_total that are not
// Graph error codes.
const (
	CodeNone        = "none"         // the attempt succeeded
	CodeNetwork     = "network"      // no response: connection, TLS or timeout error
	CodeHTTP429     = "http_429"     // HTTP 429 without a Graph error body
	CodeHTTP4xx     = "http_4xx"     // another HTTP 4xx without a Graph error body
	CodeHTTP5xx     = "http_5xx"     // HTTP 5xx without a Graph error body
	CodeBadResponse = "bad_response" // a 2xx answer that could not be read
)

// graphCodes are the Graph error codes the Messenger Platform documents for
// a gateway (see the spec's error table); codes 200 to 299 (permissions) are
// admitted too. Every other code is counted as Other.
var graphCodes = map[int]bool{
	1: true, 2: true, 4: true, 10: true, 17: true, 32: true, 100: true, 190: true,
	341: true, 368: true, 551: true, 613: true, 1200: true, 80001: true, 80006: true,
	2018171: true, 2018234: true, 2018321: true,
}

// ObserveGraphCall records one Graph API call attempt. It is meant as the
// messenger client's hook:
//
//	messenger.NewClient(messenger.Options{..., Observe: m.ObserveGraphCall})
func (m *Metrics) ObserveGraphCall(c messenger.Call) {
	endpoint := graphEndpoints.value(c.Endpoint)
	outcome := graphOutcomes.value(c.Outcome)
	m.graphChild.get([3]string{endpoint, outcome, graphCode(c)}).Inc()
	m.durationChild.get(endpoint).Observe(c.Duration.Seconds())
	if c.Outcome == messenger.OutcomeRetry {
		m.graphRetries.WithLabelValues(endpoint).Inc()
	}
}

// graphCode is the code label of an attempt: the Graph error code when
// there is one, else what kind of failure it was, or CodeNone.
func graphCode(c messenger.Call) string {
	if c.Code != 0 {
		if graphCodes[c.Code] || (c.Code >= 200 && c.Code <= 299) {
			return strconv.Itoa(c.Code)
		}
		return Other
	}
	if c.Outcome == messenger.OutcomeOK {
		return CodeNone
	}
	switch s := c.HTTPStatus; {
	case s == 0:
		return CodeNetwork
	case s == 429:
		return CodeHTTP429
	case s >= 500:
		return CodeHTTP5xx
	case s >= 400:
		return CodeHTTP4xx
	default:
		return CodeBadResponse
	}
}
