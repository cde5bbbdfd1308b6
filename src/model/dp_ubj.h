/* dp_ubj: a bounds-checked reader of UBJSON (Universal Binary JSON,
 * ubjson.org), limited to the subset XGBoost 1.7 writes for a booster
 * (XGBoosterSaveModelToBuffer with {"format": "ubj"}). It exists so that a
 * gbt model's blob is checked (model/dp_gbt_check.h) before XGBoost's own
 * UBJSON parser, which trusts every length and count, sees it.
 *
 * Pure functions over bytes: no I/O, no allocation, no global state; every
 * length and count is checked against the bytes left before it is used, and
 * containers nest at most DP_UBJ_MAX_DEPTH deep (the recursion is bounded).
 *
 * The format accepted (multi-byte numbers big-endian, as UBJSON says):
 *
 *   value  = 'Z'                                   null
 *          | 'T' | 'F'                             true, false
 *          | 'i' int8 | 'I' int16 | 'l' int32 | 'L' int64     an integer
 *          | 'd' float32                           a number
 *          | 'S' 'L' int64 n, n bytes              a string
 *          | '[' '#' 'L' int64 n, n values         an array
 *          | '[' '$' T '#' 'L' int64 n, n raw elements of type T
 *                                                  a typed array; T is 'd'
 *                                                  float32, 'l' int32, 'L'
 *                                                  int64 or 'U' uint8
 *          | '{' ('L' int64 n, n key bytes, value)* '}'        an object
 *
 * and nothing after the root value. Lengths and counts are never negative.
 * XGBoost writes an object from a std::map, so its keys come in strictly
 * increasing bytewise order (a prefix before its extensions): the reader
 * requires that, so no key appears twice and no lookup can see another
 * value than XGBoost's (whichever of two equal keys it would keep). Everything
 * else UBJSON allows is refused: the 'U' (uint8), 'D' (float64), 'C', 'H'
 * and 'N' scalars, arrays without a count ('[' ... ']'), typed objects,
 * counts and key lengths in another integer type than 'L', typed arrays of
 * other types. What XGBoost 1.7.4 writes for our boosters (a real blob):
 * keys and strings with 'L' lengths, integers as the smallest of i/I/l/L
 * that holds them, numbers 'd', counted arrays for "trees", "tree_info",
 * "version", "feature_names", typed arrays for each tree's node arrays. */
#ifndef DP_UBJ_H
#define DP_UBJ_H

#include <stddef.h>
#include <stdint.h>

/* Containers (arrays, typed arrays, objects) nested deeper are refused: an
 * XGBoost booster nests 7 deep (root, learner, gradient_booster, model,
 * trees, a tree, its tree_param). */
#define DP_UBJ_MAX_DEPTH 16

typedef enum dp_ubj_type {
    DP_UBJ_NULL,
    DP_UBJ_BOOL,
    DP_UBJ_INT,
    DP_UBJ_FLOAT,
    DP_UBJ_STRING,
    DP_UBJ_ARRAY,  /* '[' '#': values of any type */
    DP_UBJ_TYPED,  /* '[' '$': raw elements of one type (elem) */
    DP_UBJ_OBJECT
} dp_ubj_type;

/* One decoded value: a view into the buffer given to dp_ubj_parse, which
 * must outlive it. */
typedef struct dp_ubj {
    dp_ubj_type type;
    int64_t i;          /* BOOL: 0 or 1; INT: the integer */
    float f;            /* FLOAT: the number */
    const uint8_t *p;   /* STRING: its bytes; ARRAY, OBJECT: the first element or
                         * member; TYPED: the first element's bytes */
    uint64_t n;         /* STRING: its bytes; ARRAY, TYPED: elements; OBJECT: members */
    char elem;          /* TYPED: 'd', 'l', 'L' or 'U' */
    const uint8_t *end; /* one past the value's last byte */
} dp_ubj;

/* Walks the members of an object or the elements of an array. */
typedef struct dp_ubj_iter {
    const uint8_t *p, *end;
    uint64_t left;
    int object;
} dp_ubj_iter;

/* Checks that buf[0..len) is exactly one value of the format above (within
 * DP_UBJ_MAX_DEPTH, object keys in order, nothing after it) and decodes it
 * into *root. 0, or -1 with msg[cap] saying where and what is wrong
 * ("byte 20: string of 4294967296 bytes, 3 left"); msg may be NULL. Reads
 * only buf[0..len); buf may be NULL when len is 0. */
int dp_ubj_parse(const uint8_t *buf, size_t len, dp_ubj *root, char *msg, size_t cap);

/* Starts a walk over v's members (v an object) or elements (v an array; a
 * typed array's elements are read with dp_ubj_int_at / dp_ubj_float_at).
 * 0, or -1 when v is neither. */
int dp_ubj_iter_init(const dp_ubj *v, dp_ubj_iter *it);
/* The next member (its key into *key, as a STRING, when key is not NULL)
 * or element into *val: 1, or 0 at the end, or -1 on bytes that
 * dp_ubj_parse would have refused (never for values it gave). */
int dp_ubj_next(dp_ubj_iter *it, dp_ubj *key, dp_ubj *val);
/* The value of obj's member named key (a NUL-terminated string) into *val:
 * 1 found, 0 absent, -1 when obj is not an object (or is malformed). */
int dp_ubj_get(const dp_ubj *obj, const char *key, dp_ubj *val);
/* 1 when v is a STRING holding exactly s's bytes, else 0. */
int dp_ubj_str_eq(const dp_ubj *v, const char *s);
/* Element k of a typed array of integers ('l', 'L', 'U') into *out: 0, or
 * -1 when a is no such array or k >= a->n. */
int dp_ubj_int_at(const dp_ubj *a, uint64_t k, int64_t *out);
/* Element k of a typed array of floats ('d') into *out: 0, or -1 when a is
 * no such array or k >= a->n. */
int dp_ubj_float_at(const dp_ubj *a, uint64_t k, float *out);

#endif
