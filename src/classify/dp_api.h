/* dp_api: what the public API's modules (include/deeppacket.h, implemented
 * in classify/deeppacket*.c and dataset/deeppacket_dataset.c) share
 * without exporting it. */
#ifndef DP_API_H
#define DP_API_H

#include "deeppacket.h"
#include "model/dp_model.h"

/* The model behind a handle (owned by the handle). */
dp_model *dp_api_model(deeppacket *dp);
/* The handle's threshold below which a verdict is "unknown" (0: never). */
double dp_api_min_prob(const deeppacket *dp);

#endif
