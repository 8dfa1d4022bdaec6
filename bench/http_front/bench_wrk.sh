#!/bin/bash
# Plain scrape throughput for a 20 MB /metrics body: wrk (4 connections, 2 threads, 15 s) and a
# sequential loop of 30 curl scrapes, per candidate, candidates alternating, ROUNDS rounds.
#   ./bench_wrk.sh [ROUNDS] > wrk_results.txt
cd "$(dirname "$0")"
ROUNDS=${1:-2}
PORT=19500
for r in $(seq "$ROUNDS"); do
  for cand in civet-default civet-tuned mhd-epoll mhd-epoll-gzip evhttp; do
    PORT=$((PORT + 1))
    hdr=()
    case $cand in
      civet-default) ./civet_proto --listen 127.0.0.1:$PORT --mb 20 2>/dev/null & ;;
      civet-tuned) ./civet_proto --listen 127.0.0.1:$PORT --mb 20 --opt num_threads=128 --opt request_timeout_ms=2000 --opt listen_backlog=1024 2>/dev/null & ;;
      mhd-epoll) ./mhd_proto --listen 127.0.0.1:$PORT --mb 20 --limit 1024 --per-ip 64 --hdr-deadline 5 2>/dev/null & ;;
      mhd-epoll-gzip) ./mhd_proto --listen 127.0.0.1:$PORT --mb 20 --limit 1024 --per-ip 64 --hdr-deadline 5 2>/dev/null & hdr=(-H "Accept-Encoding: gzip") ;;
      evhttp) ./evhttp_proto --listen 127.0.0.1:$PORT --mb 20 2>/dev/null & ;;
    esac
    pid=$!
    sleep 2
    echo "== round $r $cand"
    wrk -t2 -c4 -d15s --latency "${hdr[@]}" http://127.0.0.1:$PORT/metrics | grep -E "Requests/sec|Transfer/sec|50%|99%|Socket errors|requests in"
    curlh=()
    [ ${#hdr[@]} -gt 0 ] && curlh=(-H "Accept-Encoding: gzip")
    for i in $(seq 30); do curl -s "${curlh[@]}" -o /dev/null -w "%{time_total}\n" http://127.0.0.1:$PORT/metrics; done |
      sort -n | awk '{a[NR]=$1} END {printf "curl x30 sequential: p50 %.1f ms, max %.1f ms\n", a[int(NR/2)]*1000, a[NR]*1000}'
    echo "server: $(grep -E 'VmHWM|Threads' /proc/$pid/status | tr -s ' \t' ' ' | tr '\n' ' ')"
    kill $pid; wait $pid 2>/dev/null
  done
done
