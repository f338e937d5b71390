/* placeholder until the daemon's main lands */
#include <stdio.h>
int main(void) { fputs("ivs-autoscaler: not yet\n", stderr); return 1; }
