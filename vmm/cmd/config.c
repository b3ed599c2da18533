#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "lib/size.h"
#include "vmm/cmd/config.h"

static json_t *config_doc; /* every string in a run_config points into it */

#define CONFIG_ROOT_MAX 256 /* bytes of "root=/dev/vdX ro" appended for a root drive */

static int config_bad(const char *path, const char *key, const char *what)
{
	pr_err("invalid config: %s: %s (file: %s)", key, what, path);
	return -EINVAL;
}

static int config_string(const char *path, const char *key, json_t *v, const char **out)
{
	if (!json_is_string(v))
		return config_bad(path, key, "expected a string");
	*out = json_string_value(v);
	return 0;
}

static int config_bool(const char *path, const char *key, json_t *v, bool *out)
{
	if (!json_is_boolean(v))
		return config_bad(path, key, "expected true or false");
	*out = json_is_true(v);
	return 0;
}

static int config_mem(const char *path, const char *key, json_t *v, uint64_t unit, uint64_t *mem)
{
	if (json_is_integer(v) && json_integer_value(v) > 0 &&
	    (uint64_t)json_integer_value(v) <= VM_MEM_MAX / unit)
		*mem = (uint64_t)json_integer_value(v) * unit;
	else if (!json_is_string(v) || unit != 1 || size__parse(json_string_value(v), mem))
		return config_bad(path, key,
				  unit == 1 ? "expected a size like \"256M\" or a number of bytes"
					    : "expected a number of MiB");
	if (*mem < VM_MEM_MIN || *mem > VM_MEM_MAX || *mem % VM_MEM_ALIGN)
		return config_bad(path, key, "guest RAM must be 4M..63G, a multiple of 2M");
	return 0;
}

static int config_vcpus(const char *path, const char *key, json_t *v, unsigned *vcpus)
{
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > VM_VCPUS_MAX)
		return config_bad(path, key, "expected a number from 1 to 64");
	*vcpus = (unsigned)json_integer_value(v);
	return 0;
}

static int config_add_disk(const char *path, const char *key, struct run_config *cfg,
			   const char *disk, bool ro)
{
	if (cfg->nr_disks == VM_MAX_DISKS)
		return config_bad(path, key, "at most 4 disks");
	cfg->disks[cfg->nr_disks].path = disk;
	cfg->disks[cfg->nr_disks].read_only = ro;
	cfg->nr_disks++;
	return 0;
}

static int config_disks(const char *path, json_t *v, struct run_config *cfg)
{
	size_t i;
	json_t *d;

	if (!json_is_array(v))
		return config_bad(path, "disks", "expected an array");
	cfg->nr_disks = 0;
	json_array_foreach(v, i, d)
	{
		json_t *p = json_object_get(d, "path"), *ro = json_object_get(d, "read_only");
		const char *k;
		json_t *x;

		if (json_is_string(d)) {
			if (config_add_disk(path, "disks", cfg, json_string_value(d), false))
				return -EINVAL;
			continue;
		}
		if (!json_is_object(d) || !json_is_string(p) || (ro && !json_is_boolean(ro)))
			return config_bad(
				path, "disks",
				"expected a path or {\"path\": PATH, \"read_only\": BOOL}");
		json_object_foreach(d, k, x) if (strcmp(k, "path") && strcmp(k, "read_only"))
		{
			pr_err("invalid config: disks: unknown key \"%s\" (file: %s)", k, path);
			return -EINVAL;
		}
		if (config_add_disk(path, "disks", cfg, json_string_value(p), json_is_true(ro)))
			return -EINVAL;
	}
	return 0;
}

/* faultline's own format: every key known. */
static int config_native(const char *path, json_t *root, struct run_config *cfg)
{
	const char *key;
	json_t *v;
	int ret = 0;

	json_object_foreach(root, key, v)
	{
		if (!strcmp(key, "kernel"))
			ret = config_string(path, key, v, &cfg->kernel);
		else if (!strcmp(key, "initrd"))
			ret = config_string(path, key, v, &cfg->initrd);
		else if (!strcmp(key, "cmdline"))
			ret = config_string(path, key, v, &cfg->cmdline);
		else if (!strcmp(key, "mem"))
			ret = config_mem(path, key, v, 1, &cfg->mem);
		else if (!strcmp(key, "vcpus"))
			ret = config_vcpus(path, key, v, &cfg->vcpus);
		else if (!strcmp(key, "disks"))
			ret = config_disks(path, v, cfg);
		else if (!strcmp(key, "channel"))
			ret = config_string(path, key, v, &cfg->channel);
		else if (!strcmp(key, "api"))
			ret = config_string(path, key, v, &cfg->api);
		else if (!strcmp(key, "balloon"))
			ret = config_bool(path, key, v, &cfg->balloon);
		else if (!strcmp(key, "hugepages"))
			ret = config_bool(path, key, v, &cfg->hugepages);
		else {
			pr_err("invalid config: unknown key \"%s\"; faultline knows kernel, "
			       "initrd, cmdline, mem, vcpus, disks, channel, api, balloon and "
			       "hugepages "
			       "(file: %s)",
			       key, path);
			return -EINVAL;
		}
		if (ret)
			return ret;
	}
	return 0;
}

static void config_ignored(const char *path, const char *section, const char *key)
{
	pr_err("config: ignoring the Firecracker key %s%s\"%s\": faultline has no such setting "
	       "(file: %s)",
	       section ? section : "", section ? "." : "", key, path);
}

/* The part of a Firecracker config faultline honours; the rest is named as ignored. */
static int config_firecracker(const char *path, json_t *root, struct run_config *cfg)
{
	static char root_arg[CONFIG_ROOT_MAX];
	const char *key, *sub;
	json_t *v, *x;
	size_t i;
	int ret = 0;

	json_object_foreach(root, key, v)
	{
		if (!strcmp(key, "boot-source") && json_is_object(v)) {
			json_object_foreach(v, sub, x)
			{
				if (!strcmp(sub, "kernel_image_path"))
					ret = config_string(path, "boot-source.kernel_image_path",
							    x, &cfg->kernel);
				else if (!strcmp(sub, "initrd_path"))
					ret = config_string(path, "boot-source.initrd_path", x,
							    &cfg->initrd);
				else if (!strcmp(sub, "boot_args"))
					ret = config_string(path, "boot-source.boot_args", x,
							    &cfg->cmdline);
				else
					config_ignored(path, key, sub);
				if (ret)
					return ret;
			}
		} else if (!strcmp(key, "machine-config") && json_is_object(v)) {
			json_object_foreach(v, sub, x)
			{
				if (!strcmp(sub, "vcpu_count"))
					ret = config_vcpus(path, "machine-config.vcpu_count", x,
							   &cfg->vcpus);
				else if (!strcmp(sub, "mem_size_mib"))
					ret = config_mem(path, "machine-config.mem_size_mib", x,
							 1ULL << 20, &cfg->mem);
				else
					config_ignored(path, key, sub);
				if (ret)
					return ret;
			}
		} else if (!strcmp(key, "drives") && json_is_array(v)) {
			cfg->nr_disks = 0;
			json_array_foreach(v, i, x)
			{
				json_t *p = json_object_get(x, "path_on_host");
				json_t *ro = json_object_get(x, "is_read_only");
				json_t *rootdev = json_object_get(x, "is_root_device");

				if (!json_is_string(p) || (ro && !json_is_boolean(ro)))
					return config_bad(path, "drives",
							  "each drive needs a path_on_host string "
							  "and a boolean is_read_only");
				if (config_add_disk(path, "drives", cfg, json_string_value(p),
						    json_is_true(ro)))
					return -EINVAL;
				if (json_is_true(rootdev))
					snprintf(root_arg, sizeof(root_arg), " root=/dev/vd%c %s",
						 'a' + (int)cfg->nr_disks - 1,
						 json_is_true(ro) ? "ro" : "rw");
			}
		} else if (!strcmp(key, "boot-source") || !strcmp(key, "machine-config") ||
			   !strcmp(key, "drives")) {
			return config_bad(path, key,
					  json_is_array(v) ? "expected an object"
							   : "expected an array");
		} else {
			config_ignored(path, NULL, key);
		}
	}
	if (root_arg[0]) {
		static char cmd[4096];

		snprintf(cmd, sizeof(cmd), "%s%s", cfg->cmdline ? cfg->cmdline : "console=ttyS0",
			 root_arg);
		cfg->cmdline = cmd;
	}
	return 0;
}

int config__load(const char *path, struct run_config *cfg)
{
	json_error_t err;
	FILE *f = fopen(path, "re");

	if (!f) {
		pr_err("cannot open the config file: %s (file: %s)", strerror(errno), path);
		return -ENOENT;
	}
	json_decref(config_doc);
	config_doc = json_loadf(f, JSON_REJECT_DUPLICATES, &err);
	fclose(f);
	if (!config_doc) {
		pr_err("invalid config: %s at line %d, column %d (file: %s)", err.text, err.line,
		       err.column, path);
		return -EINVAL;
	}
	if (!json_is_object(config_doc))
		return config_bad(path, "(top level)", "expected a JSON object");
	if (json_object_get(config_doc, "boot-source"))
		return config_firecracker(path, config_doc, cfg);
	return config_native(path, config_doc, cfg);
}
