// GraphQL metrics through Yoga's Prometheus plugin, on the instance's own registry: operation
// duration (execute or subscribe phase) by operation name and type, and errors by phase and code.
// Operation names are the clients' to choose, so the label is bounded: a name of up to 64
// characters counts as itself while fewer than MAX_OPERATION_NAMES names have been seen on this
// instance (the dashboard's and the platform's operations are far fewer); past that, `other`.
import { createCounter, createHistogram, usePrometheus } from '@graphql-yoga/plugin-prometheus';
import type { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Registry } from 'prom-client';

export const MAX_OPERATION_NAMES = 200;
const NAME = /^[_A-Za-z][_0-9A-Za-z]{0,63}$/;

export function boundedOperationNames(max = MAX_OPERATION_NAMES) {
  const seen = new Set<string>();
  return (name: string | undefined): string => {
    if (!name) return 'anonymous';
    if (seen.has(name)) return name;
    if (seen.size >= max || !NAME.test(name)) return 'other';
    seen.add(name);
    return name;
  };
}

export function useGraphQLMetrics(registry: Registry): Plugin {
  const operationName = boundedOperationNames();
  return usePrometheus({
    registry,
    // Served by MPK's own /metrics route, behind its access rules.
    endpoint: false,
    skipIntrospection: true,
    metrics: {
      graphql_envelop_request_duration: createHistogram({
        registry,
        histogram: {
          name: 'mpk_graphql_operation_duration_seconds',
          help: 'GraphQL operations: time to execute (queries, mutations) or to start (subscriptions)',
          labelNames: ['operationName', 'operationType'],
          buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        },
        fillLabelsFn: (params) => ({
          operationName: operationName(params.operationName),
          operationType: params.operationType ?? 'unknown',
        }),
      }),
      graphql_envelop_error_result: createCounter({
        registry,
        counter: {
          name: 'mpk_graphql_errors_total',
          help: 'Errors in GraphQL results by phase (parse, validate, context, execute, subscribe) and code',
          labelNames: ['phase', 'code'],
        },
        fillLabelsFn: (params) => ({
          phase: params.errorPhase ?? 'unknown',
          code: codeOf(params.error),
        }),
      }),
      // Everything else the plugin offers is off: phases, summaries, per-resolver timings and the
      // HTTP histogram (whose `url` label would be unbounded) would cost without telling more.
      graphql_envelop_request: false,
      graphql_envelop_request_time_summary: false,
      graphql_envelop_phase_parse: false,
      graphql_envelop_phase_validate: false,
      graphql_envelop_phase_context: false,
      graphql_envelop_phase_execute: false,
      graphql_envelop_phase_subscribe: false,
      graphql_envelop_deprecated_field: false,
      graphql_envelop_schema_change: false,
      graphql_envelop_execute_resolver: false,
      graphql_yoga_http_duration: false,
    },
  });
}

/**
 * An error's code when it is one of ours (upper-case words), else a bounded stand-in. The plugin
 * sees errors before they are masked: a service's MpkError is still the original error then.
 */
function codeOf(error: unknown): string {
  const e = error as (GraphQLError & { originalError?: { code?: unknown } }) | undefined;
  const code = e?.extensions?.code ?? e?.originalError?.code;
  return typeof code === 'string' && /^[A-Z_]{1,40}$/.test(code) ? code : 'none';
}
