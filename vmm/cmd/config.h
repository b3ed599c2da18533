/*
 * `faultline run --config FILE`: the microVM described in JSON, parsed
 * with jansson. Options given on the command line override the file.
 *
 * faultline's own format (configs/default.json):
 *   { "kernel": PATH, "initrd": PATH, "cmdline": STR, "mem": "256M" | BYTES,
 *     "vcpus": N, "disks": [ PATH | { "path": PATH, "read_only": BOOL } ],
 *     "channel": SOCKET }
 * and the part of a Firecracker --config-file that faultline can honour,
 * recognised by its "boot-source" key:
 *   boot-source { kernel_image_path, initrd_path, boot_args },
 *   machine-config { vcpu_count, mem_size_mib },
 *   drives [ { path_on_host, is_read_only, is_root_device, drive_id } ]
 * Other Firecracker keys are named on stderr as ignored. In faultline's
 * format an unknown key is an error. Relative paths are taken from the
 * current directory, as Firecracker does.
 */
#ifndef FAULTLINE_CONFIG_H
#define FAULTLINE_CONFIG_H

#include "vmm/vm/vm_config.h"

/*
 * Fill @cfg from @path. Returns 0, -ENOENT when the file cannot be read
 * (exit 66), or -EINVAL for bad JSON, an unknown key or a bad value (exit
 * 64); reported, naming the key and the file. Strings in @cfg point into
 * the parsed document, which lives until the process exits.
 */
int config__load(const char *path, struct run_config *cfg) __attribute__((warn_unused_result));

#endif
