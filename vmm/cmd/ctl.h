/*
 * `faultline ctl SOCKET COMMAND [ARG]`: the client of a running VM's
 * control socket (faultline run --api SOCKET; vmm/api/api.h).
 */
#ifndef FAULTLINE_CTL_H
#define FAULTLINE_CTL_H

/* argv[0] is "ctl". Returns the exit status (ctl --help lists them). */
int ctl__main(int argc, char **argv);

#endif
