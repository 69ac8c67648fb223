// SPDX-License-Identifier: GPL-2.0
/*
 * mbd-listen: a memory pressure socket client for the test VM and the
 * demo, where neither Python nor libsystemd 254 is at hand.  It follows
 * systemd's protocol the way sd-event does (connect, write
 * $MEMORY_PRESSURE_WRITE's data if given, wait for POLLIN, read), and
 * prints what membrokerd sent, one line per event:
 *
 *	MBD-PRESSURE <CLOCK_MONOTONIC seconds> <level>
 *
 *   mbd-listen [-w DATA] SOCKET
 *
 * It ends when the daemon closes the connection (status 0) or on an
 * error (status 1).  Static, libc only.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *write_data = NULL;
	char buf[4096], line[64];
	size_t len = 0;
	struct timespec ts;
	ssize_t n, i;
	int fd;

	if (argc == 4 && !strcmp(argv[1], "-w"))
		write_data = argv[2];
	else if (argc != 2) {
		fprintf(stderr, "usage: mbd-listen [-w DATA] SOCKET\n");
		return 2;
	}
	if (strlen(argv[argc - 1]) >= sizeof(sa.sun_path))
		return 2;
	strcpy(sa.sun_path, argv[argc - 1]);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("mbd-listen: connect");
		return 1;
	}
	if (write_data && write(fd, write_data, strlen(write_data) + 1) < 0) {
		perror("mbd-listen: write");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return n < 0;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		for (i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (len < sizeof(line) - 1)
					line[len++] = buf[i];
				continue;
			}
			line[len] = '\0';
			len = 0;
			printf("MBD-PRESSURE %lld.%06ld %s\n",
			       (long long)ts.tv_sec, ts.tv_nsec / 1000, line);
		}
	}
}
