// The provider job queue of a minting key or of a lease: each call MPK makes to a provider's
// key-management API (create, change, delete a lease's minted key), its status, tries and last
// error. A job that failed for good (IRRECOVERABLE) stands out and, for admins, has a Retry.
// (The pool-wide alert of such jobs is FailingJobsAlert.tsx: a module of its own, light for the
// overview and keys pages.)
import { Button, Group, Stack, Text, Title } from '@mantine/core';
import { IconRefresh } from '@tabler/icons-react';
import { useEffect, useMemo, useRef, useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { ProviderJobsQuery, RetryProviderJobMutation } from '../api/minting';
import type { ProviderJobKind, ProviderJobRowFragment } from '../gql/graphql';
import { formatTotal } from '../lib/format';
import { pageVariables } from '../lib/url';
import { ActionModal } from './ActionModal';
import { LeaseLink } from './Links';
import { ListTable } from './ListTable';
import { Pager } from './Pager';
import { RelativeTime } from './RelativeTime';
import { dark, ProviderJobStatusBadge } from './StatusBadge';
import { useLiveRefresh } from './useLiveRefresh';

/** What each kind of job does at the provider, in words. */
export const JOB_KIND_WORDS: Record<ProviderJobKind, string> = {
  CREATE: 'create the lease’s provider key',
  SET_EXPIRY: 'move the provider-side expiry',
  SET_LIMIT: 'change the provider-side limit',
  DISABLE: 'disable the provider key',
  ENABLE: 'enable the provider key',
  DELETE: 'delete the provider key',
};

/** What retrying a job of this kind will do, and what its failure means until then. */
function retryConsequence(job: ProviderJobRowFragment): string {
  const now = `MPK will try to ${JOB_KIND_WORDS[job.kind]} again now, with ${job.kind === 'CREATE' ? 'its' : 'the job’s'} tries counted afresh.`;
  const meanwhile =
    job.kind === 'DELETE'
      ? ' Until it succeeds the lease is not ended-and-clean: its provider key may still work at the provider (until its provider-side expiry).'
      : job.kind === 'CREATE'
        ? ' Until it succeeds the lease has no provider key: its agent cannot call the provider.'
        : ' Until it succeeds the provider key does not match the lease, and the lease’s later provider jobs wait behind this one.';
  return `${now}${meanwhile} If the provider still refuses, the job fails again after its tries and shows here once more.`;
}

function RetryModal({ job, onClose }: { job: ProviderJobRowFragment; onClose: () => void }) {
  const [result, retry] = useMutation(RetryProviderJobMutation);
  return (
    <ActionModal
      opened
      onClose={onClose}
      title={`Retry provider job ${job.id}?`}
      consequence={retryConsequence(job)}
      confirmLabel="Retry job"
      busy={result.fetching}
      error={result.error}
      onConfirm={async () => {
        const res = await retry({ id: job.id });
        return !res.error && { color: 'teal', message: `Provider job ${job.id} (${job.kind}) queued again` };
      }}
    />
  );
}

/**
 * Refetches while jobs are still to run (PENDING or RUNNING): a job that finishes raises no lease
 * event (only a failure for good does: PROVIDER_JOB_FAILED), so the page follows the work it shows,
 * at 1, 2, 4 ... up to 30 s apart, and stops as soon as nothing is left to run.
 */
export function useFollowJobs(unfinished: boolean, refresh: () => void) {
  const latest = useRef(refresh);
  latest.current = refresh;
  useEffect(() => {
    if (!unfinished) return;
    let wait = 1000;
    let timer: ReturnType<typeof setTimeout>;
    const next = () => {
      timer = setTimeout(() => {
        latest.current();
        wait = Math.min(30_000, wait * 2);
        next();
      }, wait);
    };
    next();
    return () => clearTimeout(timer);
  }, [unfinished]);
}

export const hasUnfinished = (jobs: readonly ProviderJobRowFragment[]) =>
  jobs.some((j) => j.status === 'PENDING' || j.status === 'RUNNING');

/** Jobs on a page: a lease has a handful (all on one page); a minting key's are paged. */
const LEASE_JOBS = 50;
const KEY_JOBS_PAGE = 20;

/**
 * The jobs of a minting key or a lease (`enabled`: only for the roles that may read them), asked
 * again when a lease event concerns them (every lease change may queue one; PROVIDER_JOB_FAILED
 * says one failed for good) and followed while some are still to run. A key's jobs come a page at
 * a time, at the cursor `page` (the URL's).
 */
export function useProviderJobs(
  filter: { keyId: string } | { leaseId: string },
  enabled: boolean,
  page: { after: string | null; before: string | null } = { after: null, before: null },
) {
  const variables = { ...filter, ...pageVariables(page, 'keyId' in filter ? KEY_JOBS_PAGE : LEASE_JOBS) };
  const [{ data, fetching }, refresh] = useQuery({ query: ProviderJobsQuery, variables, pause: !enabled });
  const again = () => refresh({ requestPolicy: 'network-only' });
  // A key's jobs move with all its leases: asked again at most every 3 s; a lease's every 1 s.
  useLiveRefresh(
    again,
    (e) => ('keyId' in filter ? e.keyId === filter.keyId : e.leaseId === filter.leaseId),
    'keyId' in filter ? 3000 : 1000,
  );
  const jobs = useMemo(() => data?.providerJobs.edges.map((e) => e.node) ?? [], [data]);
  useFollowJobs(enabled && hasUnfinished(jobs), again);
  return { jobs, connection: data?.providerJobs, loading: fetching && !data };
}

/** The jobs of a minting key or a lease (from useProviderJobs), or nothing before they load. */
export function ProviderJobsTable({
  jobsOf,
  canRetry,
  showLease,
  goTo,
}: {
  jobsOf: ReturnType<typeof useProviderJobs>;
  canRetry: boolean;
  /** On a key's page each job names its lease. */
  showLease: boolean;
  /** Pages through the jobs (a key's); without it the table shows the first page only. */
  goTo?: (page: { after?: string | null; before?: string | null }) => void;
}) {
  const { jobs, connection, loading } = jobsOf;
  const [retrying, setRetrying] = useState<ProviderJobRowFragment | null>(null);
  const failing = jobs.filter((j) => j.status === 'IRRECOVERABLE').length;
  if (!connection) return null;
  const { totalCount, totalCountIsEstimate } = connection;
  // A paged table says its count in the pager below it.
  const count = goTo
    ? ''
    : jobs.length < totalCount
      ? `newest ${jobs.length} of ${formatTotal(totalCount, totalCountIsEstimate)}`
      : `${totalCount} in all`;
  const failed = failing > 0 ? `${failing} ${goTo ? 'on this page ' : ''}failed for good` : '';
  const summary = [count, failed].filter(Boolean).join(' · ');
  return (
    <Stack gap={4} data-testid="provider-jobs">
      <Group justify="space-between">
        <Title order={2} size="h4">
          Provider jobs
        </Title>
        <Text size="sm" c="dimmed">
          {summary}
        </Text>
      </Group>
      <ListTable<ProviderJobRowFragment>
        rows={jobs}
        loading={loading}
        flash={{ idOf: (j) => j.id, signatureOf: (j) => `${j.status}:${j.attempts}` }}
        rowAttributes={(j) => ({ 'data-job-id': j.id, 'data-job-status': j.status, 'data-job-kind': j.kind })}
        empty={<Text size="sm">No provider job yet: they are queued as leases on this key change.</Text>}
        columns={[
          {
            accessor: 'id',
            title: 'Job',
            render: (j) => (
              <Text span ff="monospace" size="sm">
                {j.id}
              </Text>
            ),
          },
          ...(showLease
            ? [
                {
                  accessor: 'leaseId',
                  title: 'Lease',
                  render: (j: ProviderJobRowFragment) => <LeaseLink id={j.leaseId} />,
                },
              ]
            : []),
          {
            accessor: 'kind',
            render: (j) => (
              <Text span size="sm" title={JOB_KIND_WORDS[j.kind]}>
                {j.kind}
              </Text>
            ),
          },
          { accessor: 'status', render: (j) => <ProviderJobStatusBadge status={j.status} /> },
          { accessor: 'attempts', title: 'Tries', textAlign: 'right' },
          {
            accessor: 'lastError',
            title: 'Last error',
            width: 360,
            render: (j) =>
              j.lastError ? (
                <Text
                  span
                  size="sm"
                  c={j.status === 'IRRECOVERABLE' ? dark('red') : undefined}
                  ff="monospace"
                  style={{ wordBreak: 'break-all' }}
                >
                  {j.lastError}
                </Text>
              ) : (
                '—'
              ),
          },
          {
            accessor: 'runAfter',
            title: 'Run after',
            render: (j) =>
              j.status === 'PENDING' ? (
                <RelativeTime value={j.runAfter} size="sm" />
              ) : (
                <Text span size="sm">
                  —
                </Text>
              ),
          },
          { accessor: 'createdAt', title: 'Queued', render: (j) => <RelativeTime value={j.createdAt} size="sm" /> },
          { accessor: 'updatedAt', title: 'Updated', render: (j) => <RelativeTime value={j.updatedAt} size="sm" /> },
          ...(canRetry
            ? [
                {
                  accessor: 'actions',
                  title: '',
                  render: (j: ProviderJobRowFragment) =>
                    j.status === 'IRRECOVERABLE' && (
                      <Button
                        size="compact-xs"
                        variant="light"
                        color={dark('red')}
                        leftSection={<IconRefresh size={12} />}
                        onClick={() => setRetrying(j)}
                        aria-label={`Retry provider job ${j.id}`}
                      >
                        Retry
                      </Button>
                    ),
                },
              ]
            : []),
        ]}
      />
      {goTo && <Pager connection={connection} shown={jobs.length} goTo={goTo} noun="jobs" />}
      {retrying && <RetryModal job={retrying} onClose={() => setRetrying(null)} />}
    </Stack>
  );
}
