/* dp_task: the two classification tasks of Deep Packet (spec section 2),
 * where every layer can see them: dataset, model, train, eval and classify
 * include this, not dataset/. */
#ifndef DP_TASK_H
#define DP_TASK_H

#define DP_TASK_APP 0       /* application identification */
#define DP_TASK_TRAFFIC 1   /* traffic characterisation */
#define DP_NTASKS 2
#define DP_MAX_CLASSES 256  /* class ids of a task are 0..DP_MAX_CLASSES-1 */

/* Short task names: "app", "traffic". Directory names of the split:
 * "application_classification", "traffic_classification". */
extern const char *const dp_task_name[DP_NTASKS];
extern const char *const dp_task_dir[DP_NTASKS];
/* Returns the task index for "app"/"traffic" (also the dir names and
 * "application"), or -1. */
int dp_task_parse(const char *s);

#endif
