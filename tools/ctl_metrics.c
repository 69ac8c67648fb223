// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * membrokerctl metrics: print membrokerd's metrics, the same Prometheus
 * text it writes for node_exporter, asked over its control socket
 * (daemon/protocol.h).  Needs only libc: no module, no library state.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "protocol.h"

const char cmd_metrics_usage[] =
"Usage: " CTL_NAME " metrics [--socket PATH]\n"
"\n"
"Print membrokerd's metrics (Prometheus text format).\n"
"\n"
"  -S, --socket PATH  the daemon's control socket (default\n"
"                     $MEMBROKERD_SOCKET, else " MBD_CONTROL_SOCKET ")\n"
"  -h, --help         this text\n";

/* Send METRICS, print every reply's payload; 0 or -errno. */
static int ctl_metrics_fetch(int fd)
{
	struct mbd_msg req = {
		.magic = MBD_MAGIC, .version = MBD_VERSION,
		.type = MBD_MSG_METRICS, .id = 1,
	};
	struct mbd_msg h;
	char *buf;
	ssize_t n;
	int ret = 0;

	if (send(fd, &req, sizeof(req), MSG_NOSIGNAL) != sizeof(req))
		return -errno;
	buf = malloc(MBD_MSG_MAX);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		n = recv(fd, buf, MBD_MSG_MAX, 0);
		if (n < 0) {
			ret = -errno;
			break;
		}
		if ((size_t)n < sizeof(h)) {
			ret = n ? -EBADMSG : -ECONNRESET;
			break;
		}
		memcpy(&h, buf, sizeof(h));
		if (h.magic != MBD_MAGIC || h.id != req.id ||
		    h.type != (MBD_MSG_METRICS | MBD_MSG_REPLY) ||
		    h.len != n - sizeof(h)) {
			ret = -EBADMSG;
			break;
		}
		if (h.status) {
			ret = h.status < 0 ? h.status : -EPROTO;
			break;
		}
		fwrite(buf + sizeof(h), 1, h.len, stdout);
		if (!(h.flags & MBD_F_MORE))
			break;
	}
	free(buf);
	return ret;
}

int cmd_metrics(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "help",   no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = ctl_daemon_path(NULL);
	int opt, fd, err;

	(void)c;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "S:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'S':
			path = optarg;
			break;
		case 'h':
			fputs(cmd_metrics_usage, stdout);
			return CTL_EXIT_OK;
		default:
			return ctl_getopt_error("metrics", argv, optopt);
		}
	}
	if (optind < argc)
		return ctl_usage_error("metrics", "unexpected argument '%s'",
				       argv[optind]);
	fd = ctl_daemon_connect(path);
	if (fd < 0)
		return ctl_runtime_error(fd, "cannot reach membrokerd at %s",
					 path);
	err = ctl_metrics_fetch(fd);
	close(fd);
	if (err)
		return ctl_runtime_error(err, "membrokerd at %s", path);
	return CTL_EXIT_OK;
}
