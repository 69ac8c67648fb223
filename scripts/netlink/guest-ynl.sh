#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# In the VM (scripts/netlink/ynl-vm.sh): drive the membroker family with
# the kernel's ynl command-line client, which knows it only from
# Documentation/netlink/specs/membroker.yaml (/ynl/membroker.yaml).
# TAP, as the VM rig counts it.

cli() {
	python3.11 /ynl/cli.py --spec /ynl/membroker.yaml --no-schema \
		--output-json "$@" 2>&1
}

# The same as an unprivileged user (nobody): the client runs after
# setuid() in its own process.
cli_nobody() {
	python3.11 -c '
import os, runpy, sys
os.setgroups([]); os.setgid(65534); os.setuid(65534)
sys.argv = ["cli.py"] + sys.argv[1:]
sys.path.insert(0, "/ynl")
runpy.run_path("/ynl/cli.py", run_name="__main__")' \
		--spec /ynl/membroker.yaml --no-schema --output-json "$@" 2>&1
}

n=0
fails=0
t() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n $2"
	else
		echo "not ok $n $2"
		fails=$((fails + 1))
	fi
}
# has OUTPUT PATTERN...: every grep -E pattern matches OUTPUT
has() {
	out=$1
	shift
	for p in "$@"; do
		echo "$out" | grep -Eq -- "$p" || { echo "# no /$p/ in: $out"; return 1; }
	done
}

echo "TAP version 13"
echo "1..7"

out=$(cli --do get-state)
has "$out" '"state": "(low|steady|high)"' '"seq": [1-9]' \
	'"reason": "query"' '"total-bytes": [1-9]' '"low-bytes": [0-9]'
t $? "ynl --do get-state: a state message, reason query"

out=$(cli_nobody --do get-config)
has "$out" '"poll-min-ms": [0-9]' '"poll-max-ms": [0-9]' \
	'"history-size": [1-9]' '"virtual-low-percent": [0-9]'
t $? "ynl --do get-config, as nobody: the configuration"

out=$(cli_nobody --do set-config --json '{"ratelimit-ms": 250}')
has "$out" 'Operation not permitted|error: -1\b'
t $? "ynl --do set-config as nobody: refused, EPERM"

out=$(cli --do get-config)
has "$out" '"ratelimit-ms": 100'
t $? "the refused request changed nothing (ratelimit-ms still 100)"

# Notifications: a listener subscribed with ynl's library (the client's
# own --subscribe with --do on one socket trips over the notification
# that precedes the ack in 6.12's ynl: its _ops() forgets the operation
# of a message that answers none), then the command-line client sets the
# configuration as root; the listener waits, without a time limit of its
# own, for the notification of reason config.
out=$(python3.11 -c '
import json, subprocess, sys, time
sys.path.insert(0, "/ynl")
from lib import YnlFamily
ynl = YnlFamily("/ynl/membroker.yaml", "")
ynl.ntf_subscribe("notify")
subprocess.run(["python3.11", "/ynl/cli.py", "--spec", "/ynl/membroker.yaml",
                "--no-schema", "--do", "set-config",
                "--json", "{\"ratelimit-ms\": 250}"], check=True)
while not any(m["msg"].get("reason") == "config" for m in ynl.async_msg_queue):
    ynl.check_ntf()
    time.sleep(0.1)
print(json.dumps(ynl.async_msg_queue, default=sorted))' 2>&1)
has "$out" '"name": "notify"' '"reason": "config"' '"seq": [1-9]'
t $? "subscribed to notify, ynl --do set-config as root: a notification, reason config"

out=$(cli --do get-config)
has "$out" '"ratelimit-ms": 250'
t $? "set-config applied (ratelimit-ms 250)"

out=$(cli_nobody --dump get-history)
has "$out" '"seq": 1,' '"reason": "load"' '"reason": "config"'
t $? "ynl --dump get-history, as nobody: from seq 1 (load) to the config change"

cli --do set-config --json '{"ratelimit-ms": 100}' >/dev/null
[ "$fails" = 0 ]
