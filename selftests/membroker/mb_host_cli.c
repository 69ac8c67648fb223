// SPDX-License-Identifier: GPL-2.0
/*
 * mb-host: ask the host for a dynamic-memory change from a shell script.
 *
 *   mb-host ping | balloon BYTES | query-balloon | mem-size BYTES | query-mem
 *
 * Prints the host's answer; exits 0 on "ok", 1 on an error reply or a
 * failure to reach the host (the reason on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mb_host.h"

int main(int argc, char **argv)
{
	char req[200] = "", reply[200];
	int i, err;

	if (argc < 2) {
		fprintf(stderr, "usage: mb-host REQUEST [ARG]\n");
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if (strlen(req) + strlen(argv[i]) + 2 > sizeof(req)) {
			fprintf(stderr, "mb-host: request too long\n");
			return 2;
		}
		if (i > 1)
			strcat(req, " ");
		strcat(req, argv[i]);
	}
	err = mb_host_request(req, reply, sizeof(reply), 0);
	if (err == -EREMOTEIO) {
		fprintf(stderr, "mb-host: %s: %s\n", req, reply);
		return 1;
	}
	if (err) {
		fprintf(stderr, "mb-host: %s: %s\n", req, strerror(-err));
		return 1;
	}
	if (*reply)
		printf("%s\n", reply);
	return 0;
}
