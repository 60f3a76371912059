#!/usr/bin/env python3
"""Sorts the samples of a `perf record -g` profile of threadgate (or of the
load tool's bare forwarder) into the buckets of the README's "Where the CPU
goes" table, and the gateway's own work into its phases.

    perf record -F 999 -g -p PID -o gw.data -- sleep 10   # during a load-tool run
    python3 docs/perf-buckets.py gw.data 112.5             # the run's cpu/req in µs

Each bucket's share of the samples is multiplied by the CPU per request given.
A sample counts as garbage collection or allocation when those runtime
functions are on its stack; else it belongs to the outermost threadgate (or
forwarder) function on it, unless that function called into net/http (the
Graph call) or the Graph client (its own work); else to net/http's server or
client; else to the runtime.
"""
import collections
import subprocess
import sys

OWN = 'github.com/threadgate/threadgate/'
ROUTING = ('ServeHTTP', 'handleHTTPRequest', 'Context).Next', 'switchHandler', 'CustomRecovery')


def samples(path):
    out = subprocess.run(['perf', 'script', '-i', path, '-F', 'ip,sym'],
                         capture_output=True, text=True, check=True).stdout
    cur = []
    for line in out.split('\n'):
        s = line.strip()
        if not s:
            if cur:
                yield cur
            cur = []
            continue
        parts = s.split(None, 1)
        cur.append(parts[1] if len(parts) > 1 else '?')
    if cur:
        yield cur


def own(f):
    return ((OWN in f and 'messenger.(*Client)' not in f) or f.startswith('main.(*forwarder)')
            or f.startswith('main.readSigned') or 'log/slog' in f or 'prometheus' in f or 'gin-gonic' in f)


def bucket(st):
    if any(x in f for f in st for x in ('gcBgMarkWorker', 'gcAssistAlloc', 'bgsweep', 'bgscavenge', 'runtime.gcStart')):
        return 'garbage collection'
    if any(f.startswith(p) for f in st for p in ('runtime.mallocgc', 'runtime.newobject', 'runtime.makeslice', 'runtime.growslice')):
        return 'allocation'
    for i, f in enumerate(reversed(st)):
        if own(f) and not any(r in f for r in ROUTING):
            below = st[:len(st) - 1 - i]
            if any(g.startswith(('net/http', 'net.', 'internal/poll')) for g in below):
                return 'the Graph call (net/http client)'
            if any('messenger.(*Client)' in g for g in below):
                return "own work: the Graph client's"
            return 'own work'
    if any('persistConn' in f or 'net/http.(*Transport)' in f or 'net/http.(*Client)' in f for f in st):
        return 'the Graph call (net/http client)'
    if any('net/http.(*conn).serve' in f for f in st):
        return 'the webhook (net/http server)'
    return 'scheduler and runtime'


def phase(st):
    """The gateway's own work by phase: the function called by the webhook
    handler or by handleStored (a Graph call is not counted)."""
    r = list(reversed(st))
    for i, f in enumerate(r):
        if f.startswith(OWN + 'gateway.(*Gateway).receiveWebhook') and not f.endswith('-fm'):
            return 'webhook handler'
        if f.startswith(OWN + 'gateway.(*Gateway).handleStored'):
            if any('messenger.(*Client)' in g for g in r[i + 1:]):
                return None
            nxt = r[i + 1] if i + 1 < len(r) else '(itself)'
            return 'worker: ' + nxt.split('/')[-1]
    return None


def main():
    path, us = sys.argv[1], float(sys.argv[2])
    all_samples = list(samples(path))
    total = len(all_samples)
    buckets = collections.Counter(bucket(s) for s in all_samples)
    print('%d samples, %.1f µs per request' % (total, us))
    for k, c in buckets.most_common():
        print('%7.1f µs  %5.1f%%  %s' % (c / total * us, 100 * c / total, k))
    print('\nown work by phase (without allocation and GC):')
    phases = collections.Counter(p for s in all_samples if bucket(s) == 'own work' for p in [phase(s)] if p)
    for k, c in phases.most_common(12):
        print('%7.2f µs  %s' % (c / total * us, k))


if __name__ == '__main__':
    main()
