#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "devices/serial.h"

enum {
	UART_RBR_THR = 0, /* DLL when LCR.DLAB */
	UART_IER = 1,	  /* DLM when LCR.DLAB */
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};

#define UART_LCR_DLAB	     0x80
#define UART_IIR_NO_INT	     0x01
#define UART_LSR_THRE	     0x20
#define UART_LSR_TEMT	     0x40
#define UART_MSR_CTS_DSR_DCD 0xb0

int serial__init(struct serial *s, int out_fd)
{
	memset(s, 0, sizeof(*s));
	s->out_fd = out_fd;
	s->dll = 1; /* 115200 baud */
	return -pthread_mutex_init(&s->lock, NULL);
}

/* Caller holds s->lock. Output errors are not the guest's to see. */
static void serial__flush_locked(struct serial *s)
{
	size_t done = 0;

	while (done < s->len) {
		ssize_t n = write(s->out_fd, s->line + done, s->len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	s->len = 0;
}

void serial__flush(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	serial__flush_locked(s);
	pthread_mutex_unlock(&s->lock);
}

void serial__exit(struct serial *s)
{
	serial__flush(s);
	pthread_mutex_destroy(&s->lock);
}

static void serial__tx(struct serial *s, char c)
{
	s->line[s->len++] = c;
	if (c == '\n' || s->len == sizeof(s->line))
		serial__flush_locked(s);
}

static int serial__read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct serial *s = opaque;
	uint8_t v = 0;

	if (len != 1)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	switch (offset) {
	case UART_RBR_THR: v = s->lcr & UART_LCR_DLAB ? s->dll : 0; break;
	case UART_IER: v = s->lcr & UART_LCR_DLAB ? s->dlm : s->ier; break;
	case UART_IIR_FCR: v = UART_IIR_NO_INT; break;
	case UART_LCR: v = s->lcr; break;
	case UART_MCR: v = s->mcr; break;
	case UART_LSR: v = UART_LSR_THRE | UART_LSR_TEMT; break;
	case UART_MSR: v = UART_MSR_CTS_DSR_DCD; break;
	case UART_SCR: v = s->scr; break;
	}
	pthread_mutex_unlock(&s->lock);
	*(uint8_t *)data = v;
	return 0;
}

static int serial__write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct serial *s = opaque;
	uint8_t v = *(const uint8_t *)data;

	if (len != 1)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	switch (offset) {
	case UART_RBR_THR:
		if (s->lcr & UART_LCR_DLAB)
			s->dll = v;
		else
			serial__tx(s, (char)v);
		break;
	case UART_IER:
		if (s->lcr & UART_LCR_DLAB)
			s->dlm = v;
		else
			s->ier = v & 0x0f;
		break;
	case UART_LCR: s->lcr = v; break;
	case UART_MCR: s->mcr = v & 0x1f; break;
	case UART_SCR: s->scr = v; break;
	default: break; /* FCR, and read-only LSR/MSR: writes have no effect */
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

const struct bus_device_ops serial_ops = {
	.read = serial__read,
	.write = serial__write,
};
