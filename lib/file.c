#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/file.h"

static enum file_error file_fail(int fd, enum file_error e, int *err, int errnum)
{
	*err = errnum;
	if (fd >= 0)
		close(fd);
	return e;
}

enum file_error file__read_all(const char *path, uint64_t max, uint8_t **buf, size_t *len, int *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	size_t done = 0;

	*buf = NULL;
	*len = 0;
	if (fd < 0)
		return file_fail(fd, FILE_OPEN, err, errno);
	if (fstat(fd, &st) < 0)
		return file_fail(fd, FILE_NOT_REGULAR, err, errno);
	if (!S_ISREG(st.st_mode))
		return file_fail(fd, FILE_NOT_REGULAR, err, 0);
	*len = (size_t)st.st_size;
	if ((uint64_t)st.st_size > max)
		return file_fail(fd, FILE_TOO_BIG, err, 0);
	*buf = malloc(*len + 1);
	if (!*buf)
		return file_fail(fd, FILE_NO_MEMORY, err, ENOMEM);
	while (done < *len) {
		ssize_t n = read(fd, *buf + done, *len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(*buf);
			*buf = NULL;
			return file_fail(fd, FILE_READ, err, n < 0 ? errno : 0);
		}
		done += (size_t)n;
	}
	(*buf)[*len] = '\0';
	return file_fail(fd, FILE_OK, err, 0);
}
