// The pool-wide alert of provider jobs that failed for good (minted keys), on the overview and keys
// pages: how many, and the first five with their lease, key and error. Nothing when there are none.
import { Alert, Anchor, List, Text } from '@mantine/core';
import { IconAlertTriangle } from '@tabler/icons-react';
import { Link } from 'react-router';
import { useQuery } from 'urql';
import { FailingProviderJobsQuery } from '../api/minting';
import { formatTotal, shortId } from '../lib/format';
import { dark } from './StatusBadge';
import { useLiveRefresh } from './useLiveRefresh';

/** Links inside the red alert: its own dark red, underlined (AA contrast on the alert's tint). */
const ON_RED = { c: dark('red'), underline: 'always' } as const;

/**
 * The pool-wide alert: provider jobs that failed for good, with the leases they concern. Asked
 * again when a job fails (PROVIDER_JOB_FAILED) and after a retry (the cache refetches it).
 */
export function FailingJobsAlert() {
  const [{ data }, refresh] = useQuery({ query: FailingProviderJobsQuery, requestPolicy: 'cache-and-network' });
  useLiveRefresh(
    () => refresh({ requestPolicy: 'network-only' }),
    (e) => e.type === 'PROVIDER_JOB_FAILED',
    2000,
  );
  const jobs = data?.providerJobs;
  if (!jobs || jobs.totalCount === 0) return null;
  const n = formatTotal(jobs.totalCount, jobs.totalCountIsEstimate);
  return (
    <Alert
      color={dark('red')}
      variant="light"
      icon={<IconAlertTriangle size={18} />}
      title={`${n} provider job${jobs.totalCount === 1 ? '' : 's'} failed for good`}
      data-testid="failing-jobs"
      mb="sm"
    >
      <Text size="sm">
        MPK gave up calling the provider for these minted keys: a lease may lack its key, or an ended lease’s key may
        still work at the provider. Open the lease to see the error and retry.
      </Text>
      <List size="sm" mt={4}>
        {jobs.edges.map(({ node: j }) => (
          <List.Item key={j.id}>
            {j.kind} for lease{' '}
            <Anchor component={Link} to={`/leases/${j.leaseId}`} size="sm" ff="monospace" {...ON_RED}>
              {shortId(j.leaseId)}
            </Anchor>
            {j.key && (
              <>
                {' '}
                on{' '}
                <Anchor component={Link} to={`/keys/${j.key.id}`} size="sm" {...ON_RED}>
                  {j.key.label}
                </Anchor>
              </>
            )}
            : {j.lastError ?? 'no error recorded'}
          </List.Item>
        ))}
      </List>
    </Alert>
  );
}
