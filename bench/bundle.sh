#!/bin/sh
# Bundle figures on the default lab (3 hosts: a registry host and two agents): the time to
# build its bundle cold (nginx with its dependencies, the registry image) and its size, then a
# cold apply from the hosts' mirror and, after reset purged nginx, a cold apply from the bundle
# on the same lab. Needs what `regboot lab up` needs and the Debian mirror.
set -eu
R=${REGBOOT:-target/debug/regboot}
name=bench-bundle
work=$(mktemp -d)
trap '$R lab down --name $name >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

$R lab up --name $name --dir "$work/lab" >/dev/null
inv=$work/lab/inventory.yml

t=$(now); $R bundle -i "$inv" "$work/bundle" >/dev/null 2>&1
echo "bundle build (cold): $(secs "$t" "$(now)") s"
echo "bundle size: $(du -sh --exclude=.apt "$work/bundle" | cut -f1) ($(find "$work/bundle" -path '*/.apt' -prune -o -type f -print | wc -l) files)"
t=$(now); $R bundle -i "$inv" "$work/bundle" >/dev/null 2>&1
echo "bundle build (again, nothing missing): $(secs "$t" "$(now)") s"

t=$(now); $R apply -i "$inv" -q >/dev/null
echo "cold apply from the mirror: $(secs "$t" "$(now)") s"
$R reset -i "$inv" --yes -q >/dev/null

printf '\npackages:\n  bundle: %s\n' "$work/bundle" >> "$inv"
t=$(now); $R apply -i "$inv" -q >/dev/null
echo "cold apply from the bundle: $(secs "$t" "$(now)") s"
