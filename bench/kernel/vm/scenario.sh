#!/bin/sh
# IPVS half of bench/kernel, run inside the VM (from /init). Prints
# "RESULT <what> <total ms> <operations>" lines; run.sh collects them. Busybox has no
# sub-second clock, so times come from /proc/uptime (10 ms ticks) around
# batches long enough (>= 1 s) for that to be ~1% of the result.
FLIPS=${FLIPS:-40}
RUNS=${RUNS:-3}
now() { cut -d' ' -f1 /proc/uptime | tr -d .; }   # centiseconds
ms() { echo $(( ($2 - $1) * 10 )); }
wait_proc() {   # $1 = grep -E pattern that must appear in /proc/net/ip_vs
  while ! grep -qE "$1" /proc/net/ip_vs; do :; done
}
wait_count() {  # $1 = number of real servers
  while [ "$(grep -c -- '->' /proc/net/ip_vs)" -lt $(( $1 + 1 )) ]; do usleep 20000; done
}

# --- one real server flip, FLIPS times each way -------------------------
for run in $(seq $RUNS); do
  keepmon -c /test/flip.toml start >/tmp/k.log 2>&1 &
  wait_proc '0A000003:0050 +Masq +1 '
  t0=$(now)
  i=0
  while [ $i -lt $FLIPS ]; do
    keepmon -c /test/flip.toml lb drain web 10.0.0.3:80 >/dev/null
    wait_proc '0A000003:0050 +Masq +0 '
    keepmon -c /test/flip.toml lb ready web 10.0.0.3:80 >/dev/null
    wait_proc '0A000003:0050 +Masq +1 '
    i=$((i + 1))
  done
  t1=$(now)
  echo "RESULT ipvs_flip_keepmon $(ms $t0 $t1) $((2 * FLIPS))"
  # keepmon's own time in the IPVS plane per flip (median of the log's
  # "ipvs reconcile requests=1 ... total_us=" lines).
  tr -d '\033' < /tmp/k.log | sed 's/\[[0-9;]*m//g' \
    | sed -n 's/.*requests=1 read_table=false total_us=\([0-9]*\).*/\1/p' | sort -n > /tmp/us
  n=$(wc -l < /tmp/us)
  [ "$n" -gt 0 ] && echo "RESULT ipvs_flip_keepmon_plane $(sed -n "$((n / 2 + 1))p" /tmp/us) 1000"
  keepmon -c /test/flip.toml stop >/dev/null; sleep 1
  ipvsadm -C

  ipvsadm -A -t 10.0.0.1:80 -s wrr
  ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 3
  ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 1
  t0=$(now)
  i=0
  while [ $i -lt $FLIPS ]; do
    ipvsadm -e -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 0
    wait_proc '0A000003:0050 +Masq +0 '
    ipvsadm -e -t 10.0.0.1:80 -r 10.0.0.3:80 -m -w 1
    wait_proc '0A000003:0050 +Masq +1 '
    i=$((i + 1))
  done
  t1=$(now)
  echo "RESULT ipvs_flip_ipvsadm $(ms $t0 $t1) $((2 * FLIPS))"
  ipvsadm -C
done

# --- 1,000 real servers into an empty table -----------------------------
for run in $(seq $RUNS); do
  t0=$(now)
  keepmon -c /test/big.toml start >/tmp/k.log 2>&1 &
  wait_count 1000
  t1=$(now)
  echo "RESULT ipvs_1000_keepmon_start $(ms $t0 $t1) 1"
  keepmon -c /test/big.toml stop >/dev/null; sleep 1
  # keepmon's own measure of the reconcile (read table + 1,001 requests).
  us=$(tr -d '\033' < /tmp/k.log | sed 's/\[[0-9;]*m//g' | sed -n 's/.*requests=1001 .*total_us=\([0-9]*\).*/\1/p' | head -1)
  [ -n "$us" ] && echo "RESULT ipvs_1000_keepmon_reconcile $((us / 1000)) 1"
  # Restart over the table it left: adopt, change nothing.
  t0=$(now)
  keepmon -c /test/big.toml start >/tmp/k.log 2>&1 &
  i=0; while [ $i -lt 200 ] && ! keepmon -c /test/big.toml status >/dev/null 2>&1; do usleep 20000; i=$((i + 1)); done
  t1=$(now)
  echo "RESULT ipvs_1000_keepmon_restart_adopt $(ms $t0 $t1) 1"
  keepmon -c /test/big.toml stop >/dev/null; sleep 1
  us=$(tr -d '\033' < /tmp/k.log | sed 's/\[[0-9;]*m//g' | sed -n 's/.*requests=0 read_table=true total_us=\([0-9]*\).*/\1/p' | head -1)
  [ -n "$us" ] && echo "RESULT ipvs_1000_keepmon_adopt_reconcile $((us / 1000)) 1"
  ipvsadm -C

  t0=$(now)
  ipvsadm -R < /test/big.ipvsadm
  wait_count 1000
  t1=$(now)
  echo "RESULT ipvs_1000_ipvsadm_restore $(ms $t0 $t1) 1"
  ipvsadm -C

  t0=$(now)
  ipvsadm -A -t 10.0.0.1:80 -s wrr
  while read -r line; do ipvsadm $line; done < /test/big.each
  wait_count 1000
  t1=$(now)
  echo "RESULT ipvs_1000_ipvsadm_each $(ms $t0 $t1) 1"
  ipvsadm -C
done
