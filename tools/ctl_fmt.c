// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * membrokerctl: turning figures into text and text into figures.  Every
 * command prints notifications the same way, so a line from "watch" and a
 * line from "history" can be compared by eye or by script.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <linux/membroker.h>

#include "ctl.h"

static const char *const ctl_reasons[] = {
	[MEMBROKER_REASON_UNSPEC] = "none",
	[MEMBROKER_REASON_LOAD] = "load",
	[MEMBROKER_REASON_POLL] = "poll",
	[MEMBROKER_REASON_RECLAIM] = "reclaim",
	[MEMBROKER_REASON_HOTPLUG] = "hotplug",
	[MEMBROKER_REASON_CONFIG] = "config",
	[MEMBROKER_REASON_OOM] = "oom",
	[MEMBROKER_REASON_QUERY] = "query",
	[MEMBROKER_REASON_DEFERRED] = "deferred",
};

const char *ctl_reason_name(uint32_t reason)
{
	if (reason < ARRAY_SIZE(ctl_reasons))
		return ctl_reasons[reason];
	return "unknown";
}

/*
 * With one decimal, anything from 1023.95 up prints as "1024.0" of the
 * smaller unit (1048575 bytes as "1024.0 KiB"): move to the next unit
 * where the rounding would reach 1024, so it reads "1.0 MiB".
 */
#define CTL_FMT_NEXT_UNIT	1023.95

/* Binary units with one decimal: what free(1) -h and ip(8) -h show */
void ctl_fmt_size(char *buf, size_t len, uint64_t bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
					     "PiB", "EiB" };
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return;
	}
	v /= 1024;
	while (v >= CTL_FMT_NEXT_UNIT && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
}

/* The compact form for one-line output, in the syntax "config set" takes */
static void ctl_fmt_size_short(char *buf, size_t len, uint64_t bytes)
{
	static const char units[] = "KMGTPE";
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64, bytes);
		return;
	}
	v /= 1024;
	while (v >= CTL_FMT_NEXT_UNIT && u + 1 < sizeof(units) - 1) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f%c", v, units[u]);
}

void ctl_fmt_mono(char *buf, size_t len, uint64_t ns)
{
	snprintf(buf, len, "%" PRIu64 ".%06" PRIu64, ns / 1000000000,
		 ns % 1000000000 / 1000);
}

/*
 * The module stamps readings with CLOCK_MONOTONIC, which means nothing to
 * a person; map it to the wall clock through the current offset between
 * the two clocks (exact unless the clock was stepped since).
 */
void ctl_fmt_wall(char *buf, size_t len, uint64_t mono_ns)
{
	struct timespec mono, real;
	int64_t offset, when;
	char tz[8];
	struct tm tm;
	time_t sec;

	if (clock_gettime(CLOCK_MONOTONIC, &mono) ||
	    clock_gettime(CLOCK_REALTIME, &real)) {
		snprintf(buf, len, "unknown");
		return;
	}
	offset = ((int64_t)real.tv_sec - mono.tv_sec) * 1000000000LL +
		 (real.tv_nsec - mono.tv_nsec);
	when = (int64_t)mono_ns + offset;
	sec = (time_t)(when / 1000000000);
	if (!localtime_r(&sec, &tm) || !strftime(tz, sizeof(tz), "%z", &tm)) {
		snprintf(buf, len, "unknown");
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%s",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(when % 1000000000 / 1000000), tz);
}

void ctl_fmt_flags(char *buf, size_t len, uint32_t flags)
{
	uint32_t other = flags & ~MB_FLAG_VIRTUAL_LOW;

	if (!flags)
		snprintf(buf, len, "none");
	else if (!other)
		snprintf(buf, len, "virtual_low");
	else
		snprintf(buf, len, "%s0x%" PRIx32,
			 flags & MB_FLAG_VIRTUAL_LOW ? "virtual_low," : "",
			 other);
}

/*
 * "auto" (0), plain bytes, or a number with a K/M/G/T suffix (powers of
 * 1024, optionally written Ki/KiB/KB).  Fractions such as 1.5G are
 * accepted; the result is rounded down to whole bytes.
 */
int ctl_parse_size(const char *s, uint64_t *out)
{
	static const char sfx[] = "KMGT";
	const char *p;
	char *end;
	double v;
	int shift = 0;
	size_t n;

	if (!strcasecmp(s, "auto")) {
		*out = 0;
		return 0;
	}
	/* decimal digits, an optional fraction: not strtod's hex, exponents */
	n = strspn(s, "0123456789");
	if (!n)
		return -EINVAL;
	if (s[n] == '.')
		n += 1 + strspn(s + n + 1, "0123456789");
	errno = 0;
	v = strtod(s, &end);
	if (errno || end != s + n || !isfinite(v))
		return -EINVAL;
	if (*end) {
		p = strchr(sfx, end[0] & ~0x20);
		if (!p || !*p)
			return -EINVAL;
		shift = 10 * (int)(p - sfx + 1);
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
		if (*end)
			return -EINVAL;
	}
	v = ldexp(v, shift);
	if (v >= 18446744073709551616.0)
		return -ERANGE;
	*out = (uint64_t)v;
	return 0;
}

int ctl_parse_u32(const char *s, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	if (v > UINT32_MAX)
		return -ERANGE;
	*out = (uint32_t)v;
	return 0;
}

/* A positive number of seconds, fractions allowed ("0.5") */
int ctl_parse_seconds(const char *s, uint64_t *out_ns)
{
	char *end;
	double v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v <= 0)
		return -EINVAL;
	if (v > 1e9)
		return -ERANGE;
	/* rounded up: 0 would mean "no timeout" to the caller */
	*out_ns = (uint64_t)ceil(v * 1e9);
	return 0;
}

void ctl_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/*
 * One notification per line: monotonic seconds, wall clock, then
 * key=value pairs, so that "grep state=low" and awk both work.
 */
void ctl_print_line(FILE *f, const struct mb_notification *n)
{
	char mono[32], wall[48], flags[32], avail[24], total[24], low[24],
	     high[24];

	ctl_fmt_mono(mono, sizeof(mono), n->time_ns);
	ctl_fmt_wall(wall, sizeof(wall), n->time_ns);
	ctl_fmt_flags(flags, sizeof(flags), n->flags);
	ctl_fmt_size_short(avail, sizeof(avail), n->available);
	ctl_fmt_size_short(total, sizeof(total), n->total);
	ctl_fmt_size_short(low, sizeof(low), n->low);
	ctl_fmt_size_short(high, sizeof(high), n->high);
	fprintf(f, "[%s] %s seq=%" PRIu64 " state=%s flags=%s available=%s",
		mono, wall, n->seq, mb_state_name(n->state), flags, avail);
	fprintf(f, " total=%s low=%s high=%s reason=%s\n", total, low, high,
		ctl_reason_name(n->reason));
}

/* The members of a notification object, without the braces */
void ctl_print_json_fields(FILE *f, const struct mb_notification *n)
{
	char wall[48];

	ctl_fmt_wall(wall, sizeof(wall), n->time_ns);
	fprintf(f, "\"time_ns\":%" PRIu64 ",\"wall_time\":", n->time_ns);
	ctl_json_str(f, wall);
	fprintf(f, ",\"seq\":%" PRIu64 ",\"state\":", n->seq);
	ctl_json_str(f, mb_state_name(n->state));
	fprintf(f, ",\"flags\":%" PRIu32 ",\"virtual_low\":%s",
		n->flags, n->flags & MB_FLAG_VIRTUAL_LOW ? "true" : "false");
	fprintf(f, ",\"available_bytes\":%" PRIu64 ",\"total_bytes\":%" PRIu64,
		n->available, n->total);
	fprintf(f, ",\"low_bytes\":%" PRIu64 ",\"high_bytes\":%" PRIu64,
		n->low, n->high);
	fprintf(f, ",\"committed_bytes\":%" PRIu64
		",\"commit_limit_bytes\":%" PRIu64,
		n->committed, n->commit_limit);
	fprintf(f, ",\"reason\":");
	ctl_json_str(f, ctl_reason_name(n->reason));
	fprintf(f, ",\"source\":");
	ctl_json_str(f, mb_source_name(n->source));
}

void ctl_print_json(FILE *f, const struct mb_notification *n, bool resync)
{
	fputc('{', f);
	ctl_print_json_fields(f, n);
	fprintf(f, ",\"resync\":%s}", resync ? "true" : "false");
}
