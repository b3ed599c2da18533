/*
 * userfaultfd definitions newer than the oldest headers we build with
 * (Debian bookworm's Linux 6.1 UAPI). Values from the kernel's UAPI; the
 * feature is probed at run time, so a kernel without it is reported, not
 * assumed.
 */
#ifndef FAULTLINE_UFFD_COMPAT_H
#define FAULTLINE_UFFD_COMPAT_H

#include <linux/userfaultfd.h>

#ifndef UFFD_FEATURE_POISON /* Linux 6.6 */
#define UFFD_FEATURE_POISON (1 << 14)
#endif

#ifndef UFFDIO_POISON
#define _UFFDIO_POISON 0x08
struct uffdio_poison {
	struct uffdio_range range;
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

/* Linux 6.2: UFFDIO_CONTINUE installs the page write-protected. */
#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif

#endif
