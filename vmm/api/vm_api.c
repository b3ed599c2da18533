/*
 * The VM's commands on the control socket (--api; vmm/api/api.h has the
 * protocol). Each runs on the socket's thread and never waits on the
 * guest: pause waits a bounded time for the vCPUs to park, and everything
 * else only reads counters or flips state under vm->lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/status.h"
#include "vmm/api/api.h"
#include "vmm/api/vm_api.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/vm/snapshot.h"
#include "vmm/vm/vm.h"

#define VM_API_PARK_MS 500 /* pause: how long to wait for the vCPUs to park */

static const char *vm_on_oom_name(enum vm_oom_policy p)
{
	return p == VM_OOM_MCE ? "mce" : p == VM_OOM_PAUSE ? "pause" : "kill";
}

/* Refuse a command that changes state once the VM is stopping. */
static int vm_api_stopping(struct vm *vm, char *why)
{
	bool stopping;

	pthread_mutex_lock(&vm->lock);
	stopping = vm->stopping;
	pthread_mutex_unlock(&vm->lock);
	if (stopping)
		snprintf(why, API_WHY_LEN, "the VM is stopping");
	return stopping ? -1 : 0;
}

/* Where the vCPUs and the fault handlers are now (vcpu__where(), mmu__waiting()). */
static json_t *vm_where_json(struct vm *vm)
{
	uint64_t now = mmu__now_ns();
	json_t *o, *vcpus = json_array();
	unsigned i, in_service;
	bool queued;

	for (i = 0; vcpus && i < vm->nr_vcpus; i++) {
		struct vcpu_where w;

		vcpu__where(&vm->vcpus[i], now, &w);
		json_array_append_new(
			vcpus,
			json_pack("{s:i,s:b,s:f,s:I,s:s}", "vcpu", (int)i, "in_kvm_run", w.in_run,
				  "for_s", (double)w.for_ns / 1e9, "exits", (json_int_t)w.exits,
				  "last_exit", w.exits ? vcpu__exit_name(w.last_exit) : "none"));
	}
	mmu__waiting(&vm->mmu, &queued, &in_service);
	o = json_pack("{s:o*,s:b,s:i}", "vcpus", vcpus, "faults_queued", queued, "handlers_at_work",
		      (int)in_service);
	return o;
}

static int vm_api_status(void *ctx, json_t *request, json_t *reply, char *why)
{
	struct vm *vm = ctx;
	struct mmu_pages pages;
	const char *state;
	bool may_ask;
	json_t *o;

	(void)request;
	mmu__pages(&vm->mmu, &pages);
	pthread_mutex_lock(&vm->lock);
	state = vm->stopping ? "stopping" : vm__pause_name(vm->pause);
	o = json_pack("{s:s,s:i,s:i,s:i,s:s,s:{s:I,s:I,s:I},s:s,s:I,s:I}", "state", state, "vcpus",
		      (int)vm->nr_vcpus, "vcpus_parked", (int)vm->nr_parked, "vcpus_halted",
		      (int)vm->nr_halted, "guest_clock", vm->clock_stopped ? "stopped" : "running",
		      "pages", "ram", (json_int_t)pages.ram, "budget", (json_int_t)pages.budget,
		      "resident", (json_int_t)pages.resident, "on_oom", vm_on_oom_name(vm->on_oom),
		      "pauses", (json_int_t)vm->pauses, "oom_pauses", (json_int_t)vm->oom_pauses);
	if (o)
		json_object_set_new(o, "where", vm_where_json(vm));
	if (o && vm->pause == VM_PAUSED_OOM && !vm->stopping) {
		uint64_t now = mmu__now_ns();

		json_object_set_new(o, "oom", json_string(vm->pause_msg));
		if (vm->oom_deadline_ns)
			json_object_set_new(
				o, "stops_in_ms",
				json_integer(vm->oom_deadline_ns > now
						     ? (json_int_t)((vm->oom_deadline_ns - now) /
								    1000000ULL)
						     : 0));
	}
	may_ask = !vm->stopping && vm->pause == VM_RUNNING;
	pthread_mutex_unlock(&vm->lock);
	if (o && vm->balloon)
		json_object_set_new(o, "balloon", vm__balloon_json(vm, may_ask));
	if (!o || json_object_update(reply, o)) {
		json_decref(o);
		snprintf(why, API_WHY_LEN, "out of memory");
		return -1;
	}
	json_decref(o);
	return 0;
}

static int vm_api_pause(void *ctx, json_t *request, json_t *reply, char *why)
{
	struct vm *vm = ctx;
	enum vm_pause was;

	(void)request;
	if (vm_api_stopping(vm, why))
		return -1;
	was = vm__pause(vm);
	json_object_set_new(reply, "was", json_string(vm__pause_name(was)));
	json_object_set_new(reply, "vcpus_parked",
			    json_integer(vm__wait_parked(vm, VM_API_PARK_MS)));
	return 0;
}

static int vm_api_resume(void *ctx, json_t *request, json_t *reply, char *why)
{
	struct vm *vm = ctx;

	(void)request;
	if (vm_api_stopping(vm, why))
		return -1;
	json_object_set_new(reply, "was", json_string(vm__pause_name(vm__resume(vm))));
	return 0;
}

static int vm_api_mem_limit(void *ctx, json_t *request, json_t *reply, char *why)
{
	struct vm *vm = ctx;
	json_t *v = json_object_get(request, "bytes");
	struct mmu_pages pages;
	json_int_t bytes;
	int ret;

	if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)MMU_PAGE_SIZE) {
		snprintf(why, API_WHY_LEN,
			 "expected \"bytes\", a number of bytes of at least 4096");
		return -1;
	}
	bytes = json_integer_value(v);
	ret = mmu__set_limit(&vm->mmu, (uint64_t)bytes / MMU_PAGE_SIZE);
	mmu__pages(&vm->mmu, &pages);
	switch (ret) {
	case 0: break;
	case -ERANGE:
		snprintf(why, API_WHY_LEN, "%lld bytes is more than guest RAM (%llu bytes)",
			 (long long)bytes, (unsigned long long)(pages.ram * MMU_PAGE_SIZE));
		return -1;
	case -EBUSY:
		snprintf(why, API_WHY_LEN,
			 "%llu pages are resident and no more clean pages can be dropped: the "
			 "budget cannot go below them",
			 (unsigned long long)pages.resident);
		return -1;
	default:
		snprintf(why, API_WHY_LEN, "the %s fault handler keeps no budget",
			 vm->mmu.cfg.handler == MMU_HANDLER_NAIVE ? "naive" : "kernel");
		return -1;
	}
	json_object_set_new(reply, "budget_pages", json_integer((json_int_t)pages.budget));
	json_object_set_new(reply, "resident_pages", json_integer((json_int_t)pages.resident));
	vm__event(vm, "mem-limit",
		  json_pack("{s:I,s:I}", "budget_pages", (json_int_t)pages.budget, "resident_pages",
			    (json_int_t)pages.resident));
	return 0;
}

static int vm_api_balloon(void *ctx, json_t *request, json_t *reply, char *why)
{
	struct vm *vm = ctx;
	json_t *v = json_object_get(request, "bytes");
	uint32_t target, actual;
	json_int_t bytes;

	if (!vm->balloon) {
		snprintf(why, API_WHY_LEN, "this VM has no balloon (run it with --balloon)");
		return -1;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		snprintf(why, API_WHY_LEN, "expected \"bytes\", a number of bytes of 0 or more");
		return -1;
	}
	bytes = json_integer_value(v);
	if (bytes && vm->mmu.cfg.huge) {
		snprintf(why, API_WHY_LEN,
			 "the balloon inflates with pages of 4 KiB, and guest RAM is on huge pages "
			 "(--hugepages): only its free page reports give memory back");
		return -1;
	}
	if ((uint64_t)bytes > vm->mmu.ram.size) {
		snprintf(why, API_WHY_LEN, "%lld bytes is more than guest RAM (%llu bytes)",
			 (long long)bytes, (unsigned long long)vm->mmu.ram.size);
		return -1;
	}
	if (vm_api_stopping(vm, why))
		return -1;
	if (virtio_balloon__set_target(vm->balloon, (uint32_t)((uint64_t)bytes / MMU_PAGE_SIZE))) {
		snprintf(why, API_WHY_LEN,
			 "the balloon is busy: a vCPU waits in it (for memory, if the VM is "
			 "paused-oom); try again");
		return -1;
	}
	virtio_balloon__sizes(vm->balloon, &target, &actual);
	json_object_set_new(reply, "target_pages", json_integer(target));
	json_object_set_new(reply, "actual_pages", json_integer(actual));
	return 0;
}

static int vm_api_stats(void *ctx, json_t *request, json_t *reply, char *why)
{
	json_t *stats = vm__stats_json(ctx);

	(void)request;
	if (!stats) {
		snprintf(why, API_WHY_LEN, "out of memory");
		return -1;
	}
	json_object_set_new(reply, "stats", stats);
	return 0;
}

static int vm_api_stop(void *ctx, json_t *request, json_t *reply, char *why)
{
	struct vm *vm = ctx;
	char oom[VM_STOP_MSG_LEN];

	(void)request;
	(void)reply;
	if (vm_api_stopping(vm, why))
		return -1;
	pthread_mutex_lock(&vm->lock);
	snprintf(oom, sizeof(oom), "%s", vm->pause == VM_PAUSED_OOM ? vm->pause_msg : "");
	pthread_mutex_unlock(&vm->lock);
	vm__stop_from_outside(vm, FL_EXIT_STOPPED,
			      "stopped through the control socket (faultline ctl stop)%s%s",
			      oom[0] ? " while paused: " : "", oom);
	return 0;
}

/*
 * snapshot: the request carries the state file's and the memory file's
 * descriptors, in that order, and with "diff": true the pages file's
 * (faultline ctl makes them); "resume": true lets the VM run on after it;
 * "dir" is the directory the snapshot will be, for a later diff's base.
 * The reply has the manifest to write.
 */
static int vm_api_snapshot(void *ctx, json_t *request, json_t *reply, char *why)
{
	struct vm *vm = ctx;
	struct api *api = vm->frontend_ctx;
	json_t *resume = json_object_get(request, "resume"),
	       *diff = json_object_get(request, "diff");
	json_t *dir = json_object_get(request, "dir");
	struct snapshot_request req = {
		.state_fd = api__take_fd(api, 0),
		.memory_fd = api__take_fd(api, 1),
		.pages_fd = api__take_fd(api, 2),
		.resume = json_is_true(resume),
		.diff = json_is_true(diff),
		.dir = json_string_value(dir),
	};
	char swhy[SNAPSHOT_WHY_LEN] = "";
	int ret = -1;

	if (resume && !json_is_boolean(resume))
		snprintf(why, API_WHY_LEN, "expected \"resume\" to be true or false");
	else if (diff && !json_is_boolean(diff))
		snprintf(why, API_WHY_LEN, "expected \"diff\" to be true or false");
	else if (dir && (!json_is_string(dir) || json_string_value(dir)[0] != '/'))
		snprintf(why, API_WHY_LEN, "expected \"dir\" to be an absolute path");
	else if (!vm_api_stopping(vm, why)) {
		ret = vm__snapshot(vm, &req, reply, swhy);
		if (ret)
			snprintf(why, API_WHY_LEN, "%s", swhy);
	}
	if (req.state_fd >= 0)
		close(req.state_fd);
	if (req.memory_fd >= 0)
		close(req.memory_fd);
	if (req.pages_fd >= 0)
		close(req.pages_fd);
	return ret;
}

static const struct api_command vm_commands[] = {
	{"status", vm_api_status},	 {"pause", vm_api_pause},	{"resume", vm_api_resume},
	{"mem-limit", vm_api_mem_limit}, {"stats", vm_api_stats},	{"stop", vm_api_stop},
	{"balloon", vm_api_balloon},	 {"snapshot", vm_api_snapshot},
};

static int vm_api_start(void *ctx)
{
	return api__start(ctx);
}

static void vm_api_publish(void *ctx, const char *name, json_t *fields)
{
	api__publish(ctx, name, fields);
}

static void vm_api_close(void *ctx)
{
	api__close(ctx);
	free(ctx);
}

static const struct vm_frontend_ops vm_api_ops = {
	.start = vm_api_start,
	.publish = vm_api_publish,
	.close = vm_api_close,
};

int vm_api__open(struct vm *vm, const char *path)
{
	struct api *api = calloc(1, sizeof(*api));
	int ret;

	if (!api) {
		pr_err("cannot set up the control socket: out of memory (file: %s)", path);
		return -ENOMEM;
	}
	ret = api__open(api, path, vm_commands, sizeof(vm_commands) / sizeof(vm_commands[0]), vm);
	if (ret) {
		free(api);
		return ret;
	}
	vm__set_frontend(vm, &vm_api_ops, api);
	return 0;
}
