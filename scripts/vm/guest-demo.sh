#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The demo, run by the VM's init with MB_MODE=demo: show the state, watch
# notifications while a hog eats memory until the OOM killer stops it,
# measure how much warning LOW gave, then show the recorded history.
# Uses membrokerctl where the image has it, mb-demo otherwise.

if command -v membrokerctl >/dev/null 2>&1; then
	status() { membrokerctl status; }
	watch() { membrokerctl watch; }
	history() { membrokerctl history; }
else
	status() { mb-demo status; }
	watch() { mb-demo watch; }
	history() { mb-demo history; }
fi

echo "MB-DEMO-BEGIN"
echo "== state"
status

echo "== watching notifications; mb-hog allocates until the OOM killer"
watch &
watcher=$!
# The watcher prints the notifications; mb-demo -q only times the race.
# The hog's rate is capped so that the module's polling is what is
# measured, not how fast TCG can fault in pages.
mb-demo oom-race -q -- --rate "${MB_DEMO_RATE:-64}"
kill "$watcher" 2>/dev/null
wait "$watcher" 2>/dev/null

echo "== memory is back"
status
echo "== history"
history
echo "MB-DEMO-END"
