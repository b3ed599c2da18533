/*
 * Serial console: one line at a time under a spinlock so that lines from
 * different vCPUs never interleave.
 */
#include "guest.h"

static uint16_t console_port = 0x3f8;
static volatile int console_busy;

void console_init(uint16_t port)
{
	console_port = port;
}

void console_lock(void)
{
	while (__atomic_exchange_n(&console_busy, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
}

void console_unlock(void)
{
	__atomic_store_n(&console_busy, 0, __ATOMIC_RELEASE);
}

int gprintf(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n, i;

	va_start(ap, fmt);
	n = vsnprintf_(line, sizeof(line), fmt, ap);
	va_end(ap);
	console_lock();
	for (i = 0; line[i]; i++)
		outb(console_port, (uint8_t)line[i]);
	console_unlock();
	return n;
}
