/* dp_task: task names; see dp_task.h. */
#include "util/dp_task.h"

#include <string.h>

const char *const dp_task_name[DP_NTASKS] = {"app", "traffic"};
const char *const dp_task_dir[DP_NTASKS] = {"application_classification",
                                            "traffic_classification"};

int dp_task_parse(const char *s)
{
    for (int t = 0; t < DP_NTASKS; t++)
        if (!strcmp(s, dp_task_name[t]) || !strcmp(s, dp_task_dir[t]))
            return t;
    if (!strcmp(s, "application"))
        return DP_TASK_APP;
    return -1;
}
