// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * membrokerctl config: show the module's configuration, or change part of
 * it with "config set KEY VALUE...".  The whole command line is checked
 * before the module is asked, so a typo is a usage error (2) and never a
 * half-applied change; the module applies a request whole or not at all.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

const char cmd_config_usage[] =
"Usage: " CTL_NAME " [-j] config [show]\n"
"       " CTL_NAME " config set KEY VALUE [KEY VALUE]...\n"
"\n"
"Show or change the membroker module's configuration.  Keys:\n"
"  low SIZE          low threshold (auto: computed from RAM)\n"
"  high SIZE         high threshold (auto: computed from RAM)\n"
"  hysteresis SIZE   how far past a threshold the state must go back\n"
"  poll-min MS       shortest poll interval\n"
"  poll-max MS       longest poll interval\n"
"  ratelimit MS      least time between non-urgent notifications\n"
"  vlow PERCENT      VIRTUAL_LOW at this share of CommitLimit (1..100)\n"
"\n"
"SIZE is bytes with an optional K, M, G or T suffix (powers of 1024), or\n"
"auto for 0.  Changing the configuration needs CAP_NET_ADMIN.\n";

/**
 * struct config_key - a "config set" key
 * @name:  as typed, and as "config" prints it
 * @alias: a longer spelling also accepted
 * @bit:   its MB_KCFG_* bit
 * @size:  takes a SIZE (else a u32)
 */
struct config_key {
	const char *name;
	const char *alias;
	uint32_t bit;
	bool size;
};

static const struct config_key config_keys[] = {
	{ "low",        "low-bytes",           MB_KCFG_LOW,         true },
	{ "high",       "high-bytes",          MB_KCFG_HIGH,        true },
	{ "hysteresis", "hysteresis-bytes",    MB_KCFG_HYSTERESIS,  true },
	{ "poll-min",   "poll-min-ms",         MB_KCFG_POLL_MIN,    false },
	{ "poll-max",   "poll-max-ms",         MB_KCFG_POLL_MAX,    false },
	{ "ratelimit",  "ratelimit-ms",        MB_KCFG_RATELIMIT,   false },
	{ "vlow",       "virtual-low-percent", MB_KCFG_VIRTUAL_LOW, false },
};

static const struct config_key *config_find(const char *word)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(config_keys); i++)
		if (!strcmp(word, config_keys[i].name) ||
		    !strcmp(word, config_keys[i].alias))
			return &config_keys[i];
	return NULL;
}

static int config_store(struct mb_kmod_config *cfg,
			const struct config_key *key, const char *val)
{
	uint64_t bytes = 0;
	uint32_t v = 0;

	if (key->size) {
		if (ctl_parse_size(val, &bytes))
			return ctl_bad_value("config", key->name,
					     "a size such as 64M, or auto",
					     val);
	} else if (ctl_parse_u32(val, &v)) {
		return ctl_bad_value("config", key->name, "a whole number",
				     val);
	}

	switch (key->bit) {
	case MB_KCFG_LOW:
		cfg->low_bytes = bytes;
		break;
	case MB_KCFG_HIGH:
		cfg->high_bytes = bytes;
		break;
	case MB_KCFG_HYSTERESIS:
		cfg->hysteresis_bytes = bytes;
		break;
	case MB_KCFG_POLL_MIN:
		cfg->poll_min_ms = v;
		break;
	case MB_KCFG_POLL_MAX:
		cfg->poll_max_ms = v;
		break;
	case MB_KCFG_RATELIMIT:
		cfg->ratelimit_ms = v;
		break;
	case MB_KCFG_VIRTUAL_LOW:
		cfg->virtual_low_percent = v;
		break;
	}
	cfg->set_mask |= key->bit;
	return CTL_EXIT_OK;
}

static int config_parse_set(struct mb_kmod_config *cfg, int argc,
			    char **argv)
{
	const struct config_key *key;
	int i, ret;

	if (argc < 1)
		return ctl_usage_error("config", "config set needs at least one KEY VALUE pair");
	for (i = 0; i < argc; i += 2) {
		key = config_find(argv[i]);
		if (!key)
			return ctl_usage_error("config", "unknown key '%s'",
					       argv[i]);
		if (i + 1 >= argc)
			return ctl_usage_error("config", "%s needs a value",
					       argv[i]);
		if (cfg->set_mask & key->bit)
			return ctl_usage_error("config", "%s given twice",
					       key->name);
		ret = config_store(cfg, key, argv[i + 1]);
		if (ret)
			return ret;
	}
	return CTL_EXIT_OK;
}

static void config_size(const char *key, uint64_t bytes)
{
	char buf[32];

	if (!bytes) {
		printf("%s: auto\n", key);
		return;
	}
	ctl_fmt_size(buf, sizeof(buf), bytes);
	printf("%s: %s (%" PRIu64 " bytes)\n", key, buf, bytes);
}

static void config_show(const struct ctl *c, const struct mb_kmod_config *cfg)
{
	if (c->json) {
		printf("{\"low_bytes\":%" PRIu64 ",\"high_bytes\":%" PRIu64
		       ",\"hysteresis_bytes\":%" PRIu64 ",\"poll_min_ms\":%"
		       PRIu32 ",\"poll_max_ms\":%" PRIu32 ",\"ratelimit_ms\":%"
		       PRIu32 ",\"virtual_low_percent\":%" PRIu32
		       ",\"history_size\":%" PRIu32 "}\n",
		       cfg->low_bytes, cfg->high_bytes, cfg->hysteresis_bytes,
		       cfg->poll_min_ms, cfg->poll_max_ms, cfg->ratelimit_ms,
		       cfg->virtual_low_percent, cfg->history_size);
		return;
	}
	config_size("low", cfg->low_bytes);
	config_size("high", cfg->high_bytes);
	config_size("hysteresis", cfg->hysteresis_bytes);
	printf("poll-min: %" PRIu32 " ms\n", cfg->poll_min_ms);
	printf("poll-max: %" PRIu32 " ms\n", cfg->poll_max_ms);
	printf("ratelimit: %" PRIu32 " ms\n", cfg->ratelimit_ms);
	printf("vlow: %" PRIu32 " %%\n", cfg->virtual_low_percent);
	printf("history-size: %" PRIu32 "\n", cfg->history_size);
}

/* "low 1M high 2M", as typed, for a message; cut short with "..." */
static void config_words(char *buf, size_t len, int argc, char **argv)
{
	size_t n = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < argc && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? " " : "",
				      argv[i]);
	if (n >= len && len > 4)
		strcpy(buf + len - 4, "...");
}

/*
 * The module's extack message says more than the errno (always EINVAL)
 * and names the setting, but not the value given: repeat what was asked,
 * so that the message says which value it was.
 */
static int config_apply(struct ctl *c, const struct mb_kmod_config *cfg,
			int argc, char **argv)
{
	char msg[256] = "", what[128];
	int err;

	err = mb_kmod_set_config(c->kmod, cfg, msg, sizeof(msg));
	if (!err)
		return CTL_EXIT_OK;
	if (err == -EPERM)
		return ctl_runtime_error(0,
			"changing the configuration needs CAP_NET_ADMIN (run as root)");
	config_words(what, sizeof(what), argc, argv);
	if (msg[0])
		return ctl_runtime_error(0, "the module rejected '%s': %s",
					 what, msg);
	return ctl_runtime_error(err, "the module rejected '%s'", what);
}

int cmd_config(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json",   no_argument,       NULL, 'j' },
		{ "help",   no_argument,       NULL, 'h' },
		{ "source", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct mb_kmod_config cfg = { 0 };
	bool set = false;
	int opt, err, i;

	while ((opt = getopt_long(argc, argv, "+" CTL_COMMON_OPTS, opts,
				  NULL)) != -1) {
		switch (opt) {
		case 'j':
			c->json = true;
			break;
		case 's':
			c->source_arg = optarg;
			break;
		case 'h':
			fputs(cmd_config_usage, stdout);
			return CTL_EXIT_OK;
		default:
			return ctl_getopt_error("config", argv, optopt);
		}
	}
	argc -= optind;
	argv += optind;
	/* getopt() stopped at "show" or "set"; -h still means help there */
	for (i = 0; i < argc; i++) {
		if (ctl_is_help(argv[i])) {
			fputs(cmd_config_usage, stdout);
			return CTL_EXIT_OK;
		}
	}
	if (argc && !strcmp(argv[0], "set")) {
		err = config_parse_set(&cfg, argc - 1, argv + 1);
		if (err)
			return err;
		set = true;
	} else if (argc && (strcmp(argv[0], "show") || argc > 1)) {
		return ctl_usage_error("config", "unexpected argument '%s'",
				       argv[argc > 1 && !strcmp(argv[0], "show")]);
	}

	err = ctl_open_kmod_only(c, "config");
	if (err)
		return err;
	if (set)
		return config_apply(c, &cfg, argc - 1, argv + 1);

	err = mb_kmod_get_config(c->kmod, &cfg);
	if (err)
		return ctl_runtime_error(err, "cannot read the configuration");
	config_show(c, &cfg);
	return CTL_EXIT_OK;
}
