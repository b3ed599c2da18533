/*
 * The VM's commands on the control socket (vm_api.c): the control socket
 * as the VM's front end (vm__set_frontend()).
 */
#ifndef FAULTLINE_VM_API_H
#define FAULTLINE_VM_API_H

#include "vmm/vm/vm.h"

/*
 * Listen on @path with the VM's commands, after vm__init(). Returns 0,
 * -ENAMETOOLONG when @path does not fit a socket address, or -errno
 * (reported, naming @path). vm__run()'s end or vm__exit() closes the
 * socket and removes its file.
 */
int vm_api__open(struct vm *vm, const char *path) __attribute__((warn_unused_result));

#endif
