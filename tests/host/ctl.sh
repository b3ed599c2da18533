# The host ends of the channel and the control socket, without a VM.
# Sourced by tests/host/run.

# faultline channel: the host end of --channel, and its errors without a VM.
t_channel_client_errors() {
	cmd "$FL" channel --help
	expect_rc 0
	expect_out "Usage: faultline channel SOCKET"
	cmd "$FL" channel
	expect_rc 64
	expect_err "faultline: usage: faultline channel SOCKET; see 'faultline channel --help'"
	cmd "$FL" channel "$T/none.sock"
	expect_rc 66
	expect_err "faultline: cannot connect to the channel socket: No such file or directory (file: $T/none.sock)"
	: >"$T/plain"
	cmd "$FL" channel "$T/plain"
	expect_rc 66
	expect_err "faultline: cannot connect to the channel socket: Connection refused (file: $T/plain)"
	cmd "$FL" --help
	expect_out "       faultline channel SOCKET    (faultline channel --help)"
}

# faultline ctl: the client of --api, and its errors without a VM; --on-oom
# pause, which needs the socket.
t_ctl_client_errors() {
	cmd "$FL" ctl --help
	expect_rc 0
	expect_out "Usage: faultline ctl SOCKET COMMAND [ARG]"
	expect_out "  stop                stop the VM; faultline exits with status 76"
	cmd "$FL" ctl "$T/a.sock"
	expect_rc 64
	expect_err "faultline: usage: faultline ctl SOCKET COMMAND [ARG]; see 'faultline ctl --help'"
	cmd "$FL" ctl "$T/a.sock" status extra
	expect_rc 64
	expect_err "faultline: usage: wrong number of arguments for status; see 'faultline ctl --help'"
	cmd "$FL" ctl "$T/a.sock" mem-limit 12Q
	expect_rc 64
	expect_err "faultline: usage: expected a size like 256M or 1G, at least 4K (ctl mem-limit: 12Q)"
	cmd "$FL" ctl "$T/a.sock" balloon 12Q
	expect_rc 64
	expect_err "faultline: usage: expected a size like 256M or 1G, or 0 (ctl balloon: 12Q)"
	cmd "$FL" ctl "$T/a.sock" wait sleeping
	expect_rc 64
	expect_err "faultline: usage: wait takes running, paused or paused-oom (ctl wait: sleeping)"
	cmd "$FL" ctl "$T/a.sock" wait paused -1
	expect_rc 64
	expect_err "faultline: usage: expected a number of seconds, 0..86400 (ctl wait: -1)"
	cmd "$FL" ctl "$T/a.sock" status
	expect_rc 66
	expect_err "faultline: cannot connect to the control socket: No such file or directory (file: $T/a.sock)"
	: >"$T/plain"
	cmd "$FL" ctl "$T/plain" pause
	expect_rc 66
	expect_err "faultline: cannot connect to the control socket: Connection refused (file: $T/plain)"
	# wait: a socket that is not there is waited for, within the limit.
	cmd "$FL" ctl "$T/a.sock" wait paused 1
	expect_rc 124
	expect_err "faultline: ctl: the VM was not paused within 1 s (socket: $T/a.sock)"
	cmd "$FL" ctl "$T/a.sock" events
	expect_rc 66
	expect_err "faultline: cannot connect to the control socket: No such file or directory (file: $T/a.sock)"
	cmd "$FL" ctl "$T/a.sock" events now
	expect_rc 64
	expect_err "faultline: usage: wrong number of arguments for events; see 'faultline ctl --help'"
	cmd "$FL" run --kernel build/guest/faultline-guest.elf --on-oom pause
	expect_rc 64
	expect_err "faultline: invalid option value: pause needs --api SOCKET, the control socket through which the VM is resumed (--on-oom: pause)"
	cmd "$FL" --help
	expect_out "       faultline ctl SOCKET COMMAND (faultline ctl --help)"
}

# A fake VM on the socket (python3) answers an events request with the
# lines given: faultline ctl's stream client against what a VM should never
# send, and the end of a stream.
fake_vm() {
	python3 - "$T/f.sock" "$@" <<-'EOF' &
	import os, socket, sys
	s = socket.socket(socket.AF_UNIX)
	s.bind(sys.argv[1])
	s.listen(1)
	c, _ = s.accept()
	c.recv(4096)
	for line in sys.argv[2:]:
	    c.sendall(line.encode() + b"\n")
	c.close()
	os.unlink(sys.argv[1])
	EOF
	fake=$!
	i=0
	while [ ! -S "$T/f.sock" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}
# A control socket that answers wrongly (a VM of another version, another
# program): each is said, naming the socket, status 70. $1: the reply.
fake_api() {
	rm -f "$T/fake.sock" "$T/fake.ready"
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(1)
open(sys.argv[2], "w").close()
c, _ = s.accept()
while c.recv(4096):
    pass
c.sendall(sys.argv[3].encode())
c.close()
' "$T/fake.sock" "$T/fake.ready" "$1" &
	i=0
	while [ ! -e "$T/fake.ready" ] && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

t_ctl_wrong_replies() {
	fake_api ""
	cmd "$FL" ctl "$T/fake.sock" status
	wait
	expect_rc 70
	expect_err "faultline: ctl: no reply from the VM: the connection closed unanswered (socket: $T/fake.sock)"
	fake_api "hello"
	cmd "$FL" ctl "$T/fake.sock" pause
	wait
	expect_rc 70
	expect_err_first "faultline: ctl: the reply is not a JSON object with \"ok\": * (socket: $T/fake.sock)"
	fake_api '{"state": "running"}'
	cmd "$FL" ctl "$T/fake.sock" resume
	wait
	expect_rc 70
	expect_err "faultline: ctl: the reply is not a JSON object with \"ok\": other fields (socket: $T/fake.sock)"
}

t_ctl_event_stream() {
	fake_vm '{"ok":true,"event":"status","state":"running"}' '{"event":"paused","state":"paused"}'
	cmd "$FL" ctl "$T/f.sock" events
	wait $fake
	expect_rc 0
	expect_out_count '^{"event":"status","state":"running"}$' 1
	expect_out_count '^{"event":"paused","state":"paused"}$' 1
	fake_vm '{"ok":true,"event":"status","state":"running"}' 'paused'
	cmd "$FL" ctl "$T/f.sock" events
	wait $fake
	expect_rc 70
	expect_err "faultline: ctl: the event stream broke: a line that is not a JSON object (socket: $T/f.sock)"
	fake_vm '{"ok":false,"error":"events: 16 streams are open already"}'
	cmd "$FL" ctl "$T/f.sock" events
	wait $fake
	expect_rc 1
	expect_err "faultline: ctl: events: 16 streams are open already (socket: $T/f.sock)"
	# wait: the stream ends before the state comes (the VM ended).
	fake_vm '{"ok":true,"event":"status","state":"running"}' '{"event":"stopping","state":"stopping","status":0}'
	cmd "$FL" ctl "$T/f.sock" wait paused 10
	wait $fake
	expect_rc 1
	expect_err "faultline: ctl: the VM ended before it was paused (socket: $T/f.sock)"
	# wait: the state comes on the stream, and the VM is gone for the status: the event is printed.
	fake_vm '{"ok":true,"event":"status","state":"running"}' '{"event":"paused","state":"paused"}'
	cmd "$FL" ctl "$T/f.sock" wait paused 10
	wait $fake
	expect_rc 0
	expect_out '  "state": "paused"'
}
