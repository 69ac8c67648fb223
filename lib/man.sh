#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Man pages from the kernel-doc comments of include/membroker.h:
#   OUTDIR/man3/<function>.3       every function libmembroker.map exports
#   OUTDIR/man3type/<type>.3type   every struct, enum and typedef with a
#                                  kernel-doc comment
# kernel-doc -man writes section 9 pages for the kernel; the .TH line,
# the synopsis (MB_API, the #include) and a LIBRARY and SEE ALSO section
# are made those of a library's section 3 page here.
#
# Fails, naming them, when an export has no kernel-doc comment, when
# kernel-doc warns about any comment of the header, and when groff finds
# fault with a page: that is the test `make check` runs.
#
# usage: man.sh KERNEL_DOC OUTDIR VERSION
set -eu

kdoc=$1
out=$2
version=$3
dir=$(cd "$(dirname "$0")" && pwd)
hdr=$dir/include/membroker.h
map=$dir/libmembroker.map

[ -f "$kdoc" ] || { echo "man.sh: $kdoc missing" >&2; exit 1; }

# A date that does not change with every build
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
	date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
else
	date=$(git -C "$dir" log -1 --format=%cs -- include/membroker.h \
		2>/dev/null || true)
	[ -n "$date" ] || date=$(date -u -r "$hdr" +%Y-%m-%d)
fi

# The names the version script exports, in its order
funcs=$(sed -n '/global:/,/local:/s/^[[:space:]]*\(mb_[a-z0-9_]*\);.*/\1/p' \
	"$map")
types=$(sed -n 's/^ \* \(struct\|enum\|typedef\) \([a-z0-9_]*\) - .*/\2/p' \
	"$hdr")
[ -n "$funcs" ] || { echo "man.sh: no exports in $map" >&2; exit 1; }

tmp=$out.tmp
rm -rf "$tmp"
mkdir -p "$tmp/man3" "$tmp/man3type"
bad=0

# Every comment complete (kernel-doc repeats these for every page)
if perl "$kdoc" -none "$hdr" 2>&1 | grep . >&2; then
	bad=1
fi

# page NAME SECTION: kernel-doc's page for NAME, as a library's page
page() {
	name=$1 sect=$2 file=$tmp/man$2/$1.$2

	# -function also matches a type of the same name (struct
	# mb_cache_stats and mb_cache_stats()): keep what the section is for
	perl "$kdoc" -man -function "$name" "$hdr" 2>/dev/null |
	awk -v sect="$sect" '
	/^\.TH / {
		split($0, q, "\"")
		kind[++n] = q[4] ~ /^(struct|enum|union) /
	}
	{ line[n, ++cnt[n]] = $0 }
	END {
		for (i = 1; i <= n; i++)
			types += kind[i]
		for (i = 1; i <= n; i++) {
			if (sect == 3 ? kind[i] : types && !kind[i])
				continue
			for (j = 1; j <= cnt[i]; j++)
				print line[i, j]
		}
	}' >"$file"
	if [ "$(grep -c '^\.SH NAME' "$file")" != 1 ]; then
		echo "$name: no kernel-doc comment in include/membroker.h" >&2
		bad=1
		return
	fi
	# the functions of the same object, mb_<object>_*
	obj=$(echo "$name" | cut -d_ -f2)
	see=
	if [ "$sect" = 3 ]; then
		for f in $funcs; do
			case $f in
			"$name") ;;
			mb_"$obj"_*) see="$see${see:+,
}.BR $f (3)" ;;
			esac
		done
	fi
	awk -v name="$name" -v sect="$sect" -v date="$date" \
	    -v ver="$version" -v see="$see" '
	/^\.TH / {
		printf(".TH \"%s\" %s %s \"libmembroker %s\" " \
		       "\"libmembroker Manual\"\n", name, sect, date, ver)
		print ".nh"	# no hyphens in identifiers
		next
	}
	# NAME is what whatis(1) and apropos index: "mb_state \- ...",
	# as man-pages names its types, not "enum mb_state \- ..." as
	# kernel-doc writes it
	/^\.SH NAME/ {
		print; getline; gsub(/@/, "")
		if (sect == "3type")
			sub(/^(struct|enum|union) /, "")
		print; next
	}
	# kernel-doc prints a function pointer typedef as a function
	sect == "3type" && $0 ~ "^\\.B \"[^\"]*\" " name "$" {
		split($0, q, "\"")
		printf(".B \"typedef %s (*%s)\"\n", q[2], name)
		next
	}
	/^\.SH SYNOPSIS/ {
		print ".SH LIBRARY"
		print "libmembroker (\\fI\\-lmembroker\\fP, " \
		      "\\fIpkg\\-config membroker\\fP)"
		print
		print ".nf"
		print ".B #include <membroker.h>"
		print ".fi"
		print ".PP"
		next
	}
	/^\.SH / { print toupper($0); next }
	{ sub(/^\.B "MB_API /, ".B \""); print }
	END {
		if (see != "") {
			print ".SH \"SEE ALSO\""
			print see
		}
	}' "$file" >"$file.new"
	mv "$file.new" "$file"
	if command -v groff >/dev/null &&
	   groff -man -Tutf8 -ww -z "$file" 2>&1 | grep . >&2; then
		echo "$name: groff warns about its page" >&2
		bad=1
	fi
}

for f in $funcs; do
	page "$f" 3
done
for t in $types; do
	page "$t" 3type
done

if [ "$bad" != 0 ]; then
	rm -rf "$tmp"
	exit 1
fi
rm -rf "$out/man3" "$out/man3type"
mkdir -p "$out"
mv "$tmp/man3" "$tmp/man3type" "$out/"
rm -rf "$tmp"
