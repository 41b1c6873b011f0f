// Everything is in include/netd_relay.h; SwiftPM wants one source file per C target.
#include "netd_relay.h"
