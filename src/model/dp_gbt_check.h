/* dp_gbt_check: checks a serialised XGBoost booster (a gbt model file's
 * blob) before XGBoost sees it. XGBoost's UBJSON parser trusts every length
 * and count in the bytes and its predictor trusts every index in the trees:
 * a forged or damaged blob (the file's checksum is FNV-1a, which anyone can
 * recompute) could overflow a heap buffer, ask for terabytes, crash at the
 * first prediction (a split on feature 5000000) or load and then give every
 * flow class 0 (NaN or 3e38 leaf values). So the blob is read first with
 * our own bounds-checked reader (model/dp_ubj.h) and must describe exactly
 * the kind of booster `train --model gbt` writes with XGBoost 1.7:
 *
 *   {"learner": {"attributes": {string values},
 *                "feature_names": [], "feature_types": [],
 *                "gradient_booster": {"model": M, "name": "gbtree"},
 *                "learner_model_param": {"base_score": finite, "num_class": C,
 *                       "num_feature": D, and maybe "boost_from_average": "0"|"1",
 *                       "num_target": "1"},
 *                "objective": {"name": "multi:softprob",
 *                              "softmax_multiclass_param": {"num_class": C}}},
 *    "version": [3 integers >= 0]}
 *   M = {"gbtree_model_param": {"num_parallel_tree": "1", "num_trees": T,
 *                               "size_leaf_vector": "0"},
 *        "tree_info": [T integers, tree t's class t % C],
 *        "trees": [T trees, tree t with "id" t]}
 *
 * where C is the model header's class count, D its flow row length, T >= 1
 * a multiple of C, and every parameter a decimal string as XGBoost writes
 * them. A tree has num_nodes N >= 1, num_feature D, num_deleted,
 * size_leaf_vector "0", node arrays of exactly N elements of the types
 * XGBoost writes, empty categorical arrays, and nodes that form a tree:
 * node 0 is the root (parent 2147483647); a split node has two distinct
 * children in 1..N-1 whose parent is that node, a split feature below D,
 * a finite threshold; a leaf has no children (-1, -1) and a finite leaf
 * value; every node's value (threshold or leaf value) and base weight are
 * within +-DP_GBT_MAX_ABS, its loss change and hessian sum finite, its
 * default direction 0 or 1, its split type 0 (numerical); the nodes not
 * reachable from the root are exactly the num_deleted ones XGBoost marks
 * deleted (leaves, split index 2147483647, default left). Anything else is
 * refused. */
#ifndef DP_GBT_CHECK_H
#define DP_GBT_CHECK_H

#include <stddef.h>
#include <stdint.h>

/* Largest |threshold|, |leaf value| and |base weight| accepted. The flow
 * features are within [-1, 3] and XGBoost's leaf values (eta times a
 * gradient over a hessian sum of at least min_child_weight 1) stay far
 * below; a bound keeps the sum of all the trees' leaves, and so every
 * class's margin, finite. */
#define DP_GBT_MAX_ABS 1e6f

/* Checks blob[0..len) as above for a model of nclasses classes over rows of
 * nfeatures floats. 0, or -1 with msg[cap] saying what is wrong and where
 * ("tree 3 node 7 splits on feature 5000000 of 1080", "11 classes, the
 * model has 5", "byte 20: value cut off"). Pure: reads only the blob;
 * allocates one index array per tree, at most its node count. */
int dp_gbt_check_booster(const uint8_t *blob, size_t len, int nfeatures, int nclasses, char *msg, size_t cap);

#endif
