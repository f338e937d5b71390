/* placeholder until ivs-autoscalerctl lands */
#include <stdio.h>
int main(void) { fputs("ivs-autoscalerctl: not yet\n", stderr); return 1; }
