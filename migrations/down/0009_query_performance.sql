-- The slow-query history: monitoring data, refilled by the next slow calls.
DROP TABLE "QueryPerformance";
