#!/bin/sh
# Runs inside the IPVS test VM (from /init). Each step prints the kernel
# table between "=== STEP name" and "=== ENDSTEP name"; tests/ipvs_vm.rs
# asserts on them. Every wait is bounded (60 x 0.5 s).
K="keepmon -c /test/keepmon.toml"

step() {
  echo "=== STEP $1"
  ipvsadm -Ln
  echo "--- /proc/net/ip_vs"
  cat /proc/net/ip_vs
  echo "=== ENDSTEP $1"
}
# Wait until /proc/net/ip_vs has (want=yes) or lacks (want=no) a match of $2.
wait_table() {
  i=0
  while [ $i -lt 60 ]; do
    if grep -qE "$2" /proc/net/ip_vs; then found=yes; else found=no; fi
    [ "$found" = "$1" ] && return 0
    usleep 500000
    i=$((i + 1))
  done
  echo "TIMEOUT waiting for $1 $2"
}
# Wait until `ipvsadm -Ln --thresholds` has a match of $1 (bounded the same).
wait_thresholds() {
  i=0
  while [ $i -lt 60 ]; do
    ipvsadm -Ln --thresholds | grep -qE "$1" && return 0
    usleep 500000
    i=$((i + 1))
  done
  echo "TIMEOUT waiting for thresholds $1"
}
# Wait until /proc/net/ip_vs has exactly $1 lines matching $2.
wait_lines() {
  i=0
  while [ $i -lt 60 ]; do
    [ "$(grep -cE "$2" /proc/net/ip_vs)" = "$1" ] && return 0
    usleep 500000
    i=$((i + 1))
  done
  echo "TIMEOUT waiting for $1 lines of $2"
}
wait_exit() {
  i=0
  while [ $i -lt 60 ] && kill -0 "$1" 2>/dev/null; do usleep 500000; i=$((i + 1)); done
}

mkdir -p /www && echo ok > /www/index.html
httpd -f -p 127.0.0.2:9000 -h /www & H2=$!
httpd -f -p 127.0.0.3:9000 -h /www & H3=$!
# The real servers' service: 10.0.0.0/24 is local on lo, so IPVS NAT from
# a local client reaches this listener.
httpd -f -p 80 -h /www & H80=$!

# Before keepmon: a foreign service, and keepmon's service with the wrong
# scheduler and weight (as an ipvsadm boot script might have left them).
ipvsadm -A -t 10.0.0.50:443 -s rr
ipvsadm -a -t 10.0.0.50:443 -r 10.0.0.60:443 -m -w 1
ipvsadm -A -t 10.0.0.1:80 -s rr
ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 1
step before

$K start > /tmp/keepmon.log 2>&1 & KP=$!
wait_table yes '0A000001:0050 wrr'
wait_table yes '0A000003:0050 +Masq +1 '
wait_table yes '0A000002:0050 +Masq +3 '
step started

kill $H3
wait_table no '0A000003:0050'
step down

httpd -f -p 127.0.0.3:9000 -h /www & H3=$!
wait_table yes '0A000003:0050 +Masq +1 '
step back

$K lb drain web 10.0.0.3:80
wait_table yes '0A000003:0050 +Masq +0 '
step drained
$K lb ready web 10.0.0.3:80
wait_table yes '0A000003:0050 +Masq +1 '

for n in 1 2 3 4 5 6; do
  printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 10.0.0.1 80 | tail -1 | sed 's/^/through the VIP: /'
done
echo "=== SHOW"
$K lb show
echo "=== ENDSHOW"
kill -0 $KP && echo "keepmon still running after the kernel refused a service"

# Reload with one weight changed: that real server is changed in place
# (its connection counters survive), nothing else is touched.
sed -i 's/host = "127.0.0.2", weight = 3/host = "127.0.0.2", weight = 5/' /test/keepmon.toml
$K reload
wait_table yes '0A000002:0050 +Masq +5 '
step reloaded

# Reload with connection thresholds on 10.0.0.2 and a persistence netmask
# on the service: the service and that real server are changed in place
# (SET_SERVICE, SET_DEST), so the real server's counters survive again.
sed -i 's/host = "127.0.0.2", weight = 5/host = "127.0.0.2", weight = 5, upper_threshold = 100, lower_threshold = 50/' /test/keepmon.toml
sed -i 's/^scheduler = "wrr"$/scheduler = "wrr"\npersistence = "10m"\npersistence_netmask = "255.255.255.0"/' /test/keepmon.toml
$K reload
wait_table yes '0A000001:0050 wrr +persistent [0-9]+ FFFFFF00'  # timeout in jiffies
wait_thresholds '10\.0\.0\.2:80 +100 +50 '
step thresholds
echo "=== THRESHOLDS"
ipvsadm -Ln --thresholds
echo "=== ENDTHRESHOLDS"

$K stop
wait_exit $KP
step stopped-leave

keepmon -c /test/keepmon-remove.toml start > /tmp/keepmon2.log 2>&1 & KP=$!
i=0; while [ $i -lt 60 ] && ! keepmon -c /test/keepmon-remove.toml status >/dev/null 2>&1; do usleep 500000; i=$((i + 1)); done
usleep 1000000
step restarted
keepmon -c /test/keepmon-remove.toml stop
wait_exit $KP
step stopped-remove

# One keepalived.conf, read by Debian's keepalived and then by keepmon:
# the same kernel table, and keepmon follows a real server's failure.
ipvsadm -C
# The real servers answer "backend" (the VIPs' port 80 has the boot's own
# httpd; traffic through a mark service goes to port 81, where nothing
# listens but the real servers behind IPVS).
mkdir -p /www2 && echo backend > /www2/index.html
httpd -f -p 10.0.0.21:8080 -h /www2 & R1=$!
httpd -f -p 10.0.0.22:8080 -h /www2 & R2=$!
keepalived --dont-fork --log-console --check -f /test/keepalived.conf > /tmp/keepalived.log 2>&1 & KA=$!
# Four services (10.0.0.20:80, fwmark 7, 10.0.0.30:80, fwmark 8), each
# with both real servers.
wait_lines 4 '^(TCP|FWM) '
wait_lines 4 '0A000015:'
wait_lines 4 '0A000016:'
step keepalived
kill $KA
wait_exit $KA
ipvsadm -C
keepmon -c /test/keepalived.conf start > /tmp/keepmon3.log 2>&1 & KP=$!
wait_lines 4 '^(TCP|FWM) '
wait_lines 4 '0A000015:'
wait_lines 4 '0A000016:'
step keepmon-keepalived
echo "=== KSHOW"
keepmon -c /test/keepalived.conf lb show
echo "=== ENDKSHOW"
# One health check per real server: its failure takes it out of all four.
kill $R2
wait_lines 0 '0A000016:'
step keepmon-keepalived-down
httpd -f -p 10.0.0.22:8080 -h /www2 & R2=$!
wait_lines 4 '0A000016:'
step keepmon-keepalived-back
# Traffic through the group's fwmark 8 (NAT to port 8080): nft marks what
# this VM sends to 10.0.0.40:81, IPVS takes the marked packets.
nft add table ip fwtest
nft add chain ip fwtest out '{ type route hook output priority mangle; }'
nft add rule ip fwtest out ip daddr 10.0.0.40 tcp dport 81 meta mark set 8
for n in 1 2 3 4; do
  printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 10.0.0.40 81 | tail -1 | sed 's/^/through fwmark 8: /'
done
nft delete table ip fwtest
printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 10.0.0.40 81 | tail -1 | sed 's/^/unmarked: /'
keepmon -c /test/keepalived.conf stop
wait_exit $KP

echo "=== LOG"
cat /tmp/keepmon.log /tmp/keepmon2.log /tmp/keepalived.log /tmp/keepmon3.log
echo "=== ENDLOG"
