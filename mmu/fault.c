#include <errno.h>

#include "mmu/fault.h"

fault_t fault__from_errno(int err)
{
	switch (err) {
	case 0:
	case -EEXIST: return FAULT_DONE;
	case -EAGAIN: return FAULT_RETRY;
	case -ENOMEM:
	case -ENOSPC: return FAULT_OOM;
	default: return FAULT_SIGBUS;
	}
}

int fault__to_errno(fault_t result)
{
	if (result & FAULT_OOM)
		return -ENOMEM;
	if (result & FAULT_HWPOISON)
		return -EHWPOISON;
	if (result & FAULT_SIGBUS)
		return -EFAULT;
	if (result & FAULT_MMIO)
		return -ENXIO;
	if (result & (FAULT_RETRY | FAULT_FALLBACK))
		return -EAGAIN;
	return 0;
}

const char *fault__name(fault_t result)
{
	if (result & FAULT_OOM)
		return "oom";
	if (result & FAULT_HWPOISON)
		return "hwpoison";
	if (result & FAULT_SIGBUS)
		return "sigbus";
	if (result & FAULT_MMIO)
		return "mmio";
	if (result & FAULT_RETRY)
		return "retry";
	if (result & FAULT_FALLBACK)
		return "fallback";
	return "done";
}

const char *fault__source_name(enum fault_source source)
{
	switch (source) {
	case FAULT_SRC_UFFD: return "userfaultfd";
	case FAULT_SRC_MMIO_EXIT: return "MMIO exit in RAM";
	case FAULT_SRC_SIGBUS: return "SIGBUS";
	case FAULT_SRC_EFAULT: return "KVM_RUN -EFAULT";
	case FAULT_SRC_MONITOR: return "monitor access";
	}
	return "unknown";
}
