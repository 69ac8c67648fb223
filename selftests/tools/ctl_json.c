// SPDX-License-Identifier: GPL-2.0
/*
 * A strict reader for RFC 8259 JSON, small enough to live with the tests:
 * the guest has no python or jq, and "-j" output is only useful if any
 * JSON parser accepts it.  Numbers are kept as written, so that byte
 * figures can be compared exactly instead of through a double.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_test.h"

#define JSON_MAX_DEPTH	32

struct parser {
	const char *p;
	int depth;
};

static void skip_ws(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
	       *ps->p == '\r')
		ps->p++;
}

static int hex4(const char *p, unsigned int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < 4; i++) {
		char c = p[i];

		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned int)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned int)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned int)(c - 'A' + 10);
		else
			return -EBADMSG;
	}
	return 0;
}

/* A string at ps->p (on its opening quote), decoded to UTF-8 */
static int parse_string(struct parser *ps, char **out)
{
	const char *p = ps->p + 1, *end = p;
	size_t len = 0;
	char *s;

	/* decoding never makes it longer than it is written */
	while (*end && *end != '"')
		end += *end == '\\' && end[1] ? 2 : 1;
	s = malloc((size_t)(end - p) + 1);
	if (!s)
		return -ENOMEM;
	for (;;) {
		unsigned char c = (unsigned char)*p++;
		unsigned int u;

		if (c == '"')
			break;
		if (c < 0x20)		/* also the end of the text */
			goto bad;
		if (c != '\\') {
			s[len++] = (char)c;
			continue;
		}
		c = (unsigned char)*p++;
		switch (c) {
		case '"': case '\\': case '/':
			s[len++] = (char)c;
			break;
		case 'b':
			s[len++] = '\b';
			break;
		case 'f':
			s[len++] = '\f';
			break;
		case 'n':
			s[len++] = '\n';
			break;
		case 'r':
			s[len++] = '\r';
			break;
		case 't':
			s[len++] = '\t';
			break;
		case 'u':
			if (hex4(p, &u))
				goto bad;
			p += 4;
			/* the tool escapes only control characters */
			if (u >= 0xd800 && u <= 0xdfff)
				goto bad;
			if (u < 0x80) {
				s[len++] = (char)u;
			} else if (u < 0x800) {
				s[len++] = (char)(0xc0 | u >> 6);
				s[len++] = (char)(0x80 | (u & 0x3f));
			} else {
				s[len++] = (char)(0xe0 | u >> 12);
				s[len++] = (char)(0x80 | (u >> 6 & 0x3f));
				s[len++] = (char)(0x80 | (u & 0x3f));
			}
			break;
		default:
			goto bad;
		}
	}
	s[len] = '\0';
	ps->p = p;
	*out = s;
	return 0;
bad:
	free(s);
	return -EBADMSG;
}

static size_t digits(const char *p)
{
	size_t n = 0;

	while (p[n] >= '0' && p[n] <= '9')
		n++;
	return n;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int parse_number(struct parser *ps, char **out)
{
	const char *start = ps->p, *p = ps->p;
	size_t n;

	if (*p == '-')
		p++;
	n = digits(p);
	if (!n || (n > 1 && *p == '0'))
		return -EBADMSG;
	p += n;
	if (*p == '.') {
		n = digits(++p);
		if (!n)
			return -EBADMSG;
		p += n;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		n = digits(p);
		if (!n)
			return -EBADMSG;
		p += n;
	}
	*out = strndup(start, (size_t)(p - start));
	if (!*out)
		return -ENOMEM;
	ps->p = p;
	return 0;
}

static int parse_value(struct parser *ps, struct json *j);

static int add_kid(struct json *j, struct json **kid)
{
	struct json *k = reallocarray(j->kids, j->n + 1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	j->kids = k;
	*kid = &k[j->n++];
	memset(*kid, 0, sizeof(**kid));
	return 0;
}

/* An array or an object; ps->p is on its opening bracket */
static int parse_container(struct parser *ps, struct json *j, char close)
{
	struct json *kid;
	char *key = NULL;
	int err;

	if (++ps->depth > JSON_MAX_DEPTH)
		return -EBADMSG;
	ps->p++;
	skip_ws(ps);
	if (*ps->p == close) {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		skip_ws(ps);
		if (close == '}') {
			if (*ps->p != '"')
				return -EBADMSG;
			err = parse_string(ps, &key);
			if (err)
				return err;
			skip_ws(ps);
			if (*ps->p++ != ':') {
				free(key);
				return -EBADMSG;
			}
		}
		err = add_kid(j, &kid);
		if (err) {
			free(key);
			return err;
		}
		kid->key = key;
		key = NULL;
		err = parse_value(ps, kid);
		if (err)
			return err;
		skip_ws(ps);
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p++ != close)
			return -EBADMSG;
		ps->depth--;
		return 0;
	}
}

static int parse_value(struct parser *ps, struct json *j)
{
	skip_ws(ps);
	switch (*ps->p) {
	case '{':
		j->type = JSON_OBJECT;
		return parse_container(ps, j, '}');
	case '[':
		j->type = JSON_ARRAY;
		return parse_container(ps, j, ']');
	case '"':
		j->type = JSON_STRING;
		return parse_string(ps, &j->s);
	case 't':
		j->type = JSON_BOOL;
		j->b = true;
		if (strncmp(ps->p, "true", 4))
			return -EBADMSG;
		ps->p += 4;
		return 0;
	case 'f':
		j->type = JSON_BOOL;
		if (strncmp(ps->p, "false", 5))
			return -EBADMSG;
		ps->p += 5;
		return 0;
	case 'n':
		j->type = JSON_NULL;
		if (strncmp(ps->p, "null", 4))
			return -EBADMSG;
		ps->p += 4;
		return 0;
	}
	j->type = JSON_NUMBER;
	return parse_number(ps, &j->s);
}

static void json_clear(struct json *j)
{
	size_t i;

	for (i = 0; i < j->n; i++)
		json_clear(&j->kids[i]);
	free(j->kids);
	free(j->s);
	free(j->key);
}

void json_free(struct json *j)
{
	if (!j)
		return;
	json_clear(j);
	free(j);
}

/* Parse @text, which must be exactly one JSON value (and white space) */
int json_parse(const char *text, struct json **out)
{
	struct parser ps = { .p = text };
	struct json *j;
	int err;

	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	err = parse_value(&ps, j);
	if (!err) {
		skip_ws(&ps);
		if (*ps.p)
			err = -EBADMSG;
	}
	if (err) {
		json_free(j);
		return err;
	}
	*out = j;
	return 0;
}

/* The member @key of object @obj; NULL if absent or if @obj is not one */
const struct json *json_get(const struct json *obj, const char *key)
{
	const struct json *found = NULL;
	size_t i;

	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (i = 0; i < obj->n; i++) {
		if (strcmp(obj->kids[i].key, key))
			continue;
		/* a key given twice is a bug in the output */
		if (found)
			return NULL;
		found = &obj->kids[i];
	}
	return found;
}

/* A member that is a whole number >= 0 written as such */
int json_u64(const struct json *obj, const char *key, uint64_t *v)
{
	const struct json *j = json_get(obj, key);
	unsigned long long n;
	char *end;

	if (!j || j->type != JSON_NUMBER)
		return -ENOENT;
	if (j->s[digits(j->s)])
		return -EBADMSG;
	errno = 0;
	n = strtoull(j->s, &end, 10);
	if (errno)
		return -ERANGE;
	*v = n;
	return 0;
}

const char *json_str(const struct json *obj, const char *key)
{
	const struct json *j = json_get(obj, key);

	return j && j->type == JSON_STRING ? j->s : NULL;
}

int json_bool(const struct json *obj, const char *key, bool *v)
{
	const struct json *j = json_get(obj, key);

	if (!j || j->type != JSON_BOOL)
		return -ENOENT;
	*v = j->b;
	return 0;
}

/*
 * Whether a notification object of "watch -j" or "history -j" holds
 * exactly the figures of @st.  Return: 0, or -1 with the first
 * difference in @why.
 */
int json_matches_state(const struct json *obj, const struct mb_state *st,
		       char *why, size_t len)
{
	struct {
		const char *key;
		uint64_t want;
	} nums[] = {
		{ "time_ns", st->timestamp_ns },
		{ "seq", st->seq },
		{ "flags", st->flags },
		{ "available_bytes", st->available },
		{ "total_bytes", st->total },
		{ "low_bytes", st->low },
		{ "high_bytes", st->high },
		{ "committed_bytes", st->committed },
		{ "commit_limit_bytes", st->commit_limit },
	};
	struct {
		const char *key;
		const char *want;
	} strs[] = {
		{ "state", ctl_state_name(st->state) },
		{ "reason", ctl_reason_name(st->reason) },
		{ "source", "kmod" },
	};
	const char *s;
	uint64_t v;
	size_t i;
	bool b;

	for (i = 0; i < ARRAY_SIZE(nums); i++) {
		if (json_u64(obj, nums[i].key, &v) || v != nums[i].want) {
			snprintf(why, len, "%s: want %llu", nums[i].key,
				 (unsigned long long)nums[i].want);
			return -1;
		}
	}
	for (i = 0; i < ARRAY_SIZE(strs); i++) {
		s = json_str(obj, strs[i].key);
		if (!s || strcmp(s, strs[i].want)) {
			snprintf(why, len, "%s: want \"%s\"", strs[i].key,
				 strs[i].want);
			return -1;
		}
	}
	if (json_bool(obj, "virtual_low", &b) ||
	    b != !!(st->flags & MEMBROKER_FLAG_VIRTUAL_LOW)) {
		snprintf(why, len, "virtual_low does not match flags");
		return -1;
	}
	if (!json_str(obj, "wall_time")) {
		snprintf(why, len, "no wall_time");
		return -1;
	}
	return 0;
}
