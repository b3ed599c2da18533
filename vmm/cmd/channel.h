/*
 * `faultline channel SOCKET`: the host end of a VM's channel (--channel,
 * devices/virtio/virtio_console.h) for a shell. It connects to SOCKET, copies its
 * standard input to the guest and the guest's bytes to its standard
 * output, and ends when the socket closes (the VM ended) with status 0.
 * The end of its input does not end it: the guest may still answer.
 */
#ifndef FAULTLINE_CHANNEL_H
#define FAULTLINE_CHANNEL_H

/* argv[0] is "channel". Returns the exit status. */
int channel__main(int argc, char **argv);

#endif
