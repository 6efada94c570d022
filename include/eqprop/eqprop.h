/* eqprop — umbrella header: everything in the public API. */
#ifndef EQPROP_EQPROP_H
#define EQPROP_EQPROP_H

#include "eqprop/ad.h"
#include "eqprop/bp.h"
#include "eqprop/checkpoint.h"
#include "eqprop/config.h"
#include "eqprop/data.h"
#include "eqprop/dist.h"
#include "eqprop/encode.h"
#include "eqprop/eprop.h"
#include "eqprop/ep.h"
#include "eqprop/hopfield.h"
#include "eqprop/model.h"
#include "eqprop/optim.h"
#include "eqprop/rng.h"
#include "eqprop/snn.h"
#include "eqprop/stats.h"
#include "eqprop/tasks.h"
#include "eqprop/status.h"

#endif
