// My agents: a user asks for a lease for an agent (provider, framework), sees their leases with
// time left, spend and cap, and releases them. Refusals say what they mean for this user.
import { Alert, Button, Group, Paper, Select, SimpleGrid, Stack, Text, TextInput } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { IconPlayerStop, IconRocket } from '@tabler/icons-react';
import { useMemo, useState } from 'react';
import { useMutation, useQuery } from 'urql';
import { ActionModal } from '../../components/ActionModal';
import { EmptyState } from '../../components/EmptyState';
import { ErrorNotice } from '../../components/ErrorNotice';
import { ListTable } from '../../components/ListTable';
import { PageHeader } from '../../components/PageHeader';
import { Pager } from '../../components/Pager';
import { RelativeTime } from '../../components/RelativeTime';
import { SpendBar } from '../../components/SpendBar';
import { LeaseStatusBadge } from '../../components/StatusBadge';
import { graphql } from '../../gql';
import type { AgentLeaseFragment, Framework, Provider } from '../../gql/graphql';
import { fieldErrors } from '../../lib/errors';
import { FRAMEWORK_NAMES, formatUsd, PROVIDER_NAMES, shortId } from '../../lib/format';
import { humanDuration } from '../../lib/policy';
import { pageVariables, useUrlFilters } from '../../lib/url';
import { useMe } from '../../me';

const AgentsDocument = graphql(`
  query AgentsPage($first: Int, $after: String, $last: Int, $before: String, $userId: ID) {
    me {
      id
      tier
      activeLeaseCount
    }
    tierPolicies {
      tier
      leaseDurationSeconds
      maxActiveLeases
      spendCapUsd
    }
    leases(first: $first, after: $after, last: $last, before: $before, userId: $userId) {
      totalCount
      totalCountIsEstimate
      pageInfo {
        ...Paging
      }
      edges {
        cursor
        node {
          ...AgentLease
        }
      }
    }
  }
`);

const RequestLeaseDocument = graphql(`
  mutation RequestAgentLease($input: RequestLeaseInput!) {
    requestLease(input: $input) {
      ...AgentLease
    }
  }
`);

const ReleaseLeaseDocument = graphql(`
  mutation ReleaseAgentLease($id: ID!) {
    releaseLease(id: $id) {
      ...AgentLease
    }
  }
`);

/** Rows flash when their status, spend or expiry changes. */
const AGENT_FLASH = {
  idOf: (l: AgentLeaseFragment) => l.id,
  signatureOf: (l: AgentLeaseFragment) => `${l.status}|${l.usageUsd}|${l.expiresAt}`,
};
const options = (names: Record<string, string>) => Object.entries(names).map(([value, label]) => ({ value, label }));

function StartAgent() {
  const [provider, setProvider] = useState<Provider>('OPENROUTER');
  const [framework, setFramework] = useState<Framework>('OPENCLAW');
  const [agentId, setAgentId] = useState('');
  const [result, request] = useMutation(RequestLeaseDocument);
  const errors = fieldErrors(result.error);
  return (
    <Paper withBorder p="md" radius="md">
      <form
        onSubmit={async (event) => {
          event.preventDefault();
          const res = await request({ input: { provider, framework, agentId: agentId.trim() || null } });
          if (res.error || !res.data) return;
          const lease = res.data.requestLease;
          notifications.show({
            color: 'teal',
            message:
              `Lease ${shortId(lease.id)} for ${lease.agentId ?? 'your agent'} ` +
              `until ${new Date(lease.expiresAt).toUTCString()}`,
          });
          setAgentId('');
        }}
      >
        <Stack gap="sm">
          <Text fw={600} size="sm">
            Start an agent on the shared provider
          </Text>
          <SimpleGrid cols={{ base: 1, sm: 4 }}>
            <Select
              label="Provider"
              data={options(PROVIDER_NAMES)}
              value={provider}
              allowDeselect={false}
              onChange={(v) => setProvider((v as Provider) ?? 'OPENROUTER')}
            />
            <Select
              label="Framework"
              data={options(FRAMEWORK_NAMES)}
              value={framework}
              allowDeselect={false}
              onChange={(v) => setFramework((v as Framework) ?? 'OPENCLAW')}
            />
            <TextInput
              label="Agent id"
              placeholder="optional, e.g. support-bot"
              value={agentId}
              onChange={(e) => setAgentId(e.currentTarget.value)}
              error={errors.agentId}
            />
            <Stack justify="flex-end">
              <Button type="submit" leftSection={<IconRocket size={16} />} loading={result.fetching}>
                Request lease
              </Button>
            </Stack>
          </SimpleGrid>
          {result.error && !errors.agentId && <ErrorNotice error={result.error} title="No lease" provider={provider} />}
        </Stack>
      </form>
    </Paper>
  );
}

function ReleaseModal({ lease, onClose }: { lease: AgentLeaseFragment; onClose: () => void }) {
  const [result, release] = useMutation(ReleaseLeaseDocument);
  return (
    <ActionModal
      opened
      onClose={onClose}
      title={`Release lease ${shortId(lease.id)}?`}
      consequence={
        `${lease.agentId ? `Agent ${lease.agentId}` : 'The agent'} stops using the shared key, ` +
        `and the slot is free for another agent.`
      }
      confirmLabel="Release"
      danger
      busy={result.fetching}
      error={result.error}
      onConfirm={async () => {
        const res = await release({ id: lease.id });
        return !res.error && { message: `Lease ${shortId(lease.id)} released` };
      }}
    />
  );
}

export default function AgentsPage() {
  const me = useMe();
  const paging = useUrlFilters([] as const);
  const [releasing, setReleasing] = useState<AgentLeaseFragment | null>(null);
  const [{ data, error, fetching }] = useQuery({
    query: AgentsDocument,
    variables: { ...pageVariables(paging.page), userId: me.id },
  });
  const rows = useMemo(() => (data?.leases.edges ?? []).map((e) => e.node), [data]);
  const policy = data?.tierPolicies.find((p) => p.tier === (data.me.tier ?? me.tier));

  return (
    <Stack gap="md">
      <PageHeader title="My agents" description="Leases on the shared provider keys, one per agent." />
      {policy && data && (
        <Alert variant="light" color="indigo" title={`Your tier: ${data.me.tier}`}>
          {data.me.activeLeaseCount} of {policy.maxActiveLeases} active agent
          {policy.maxActiveLeases === 1 ? '' : 's'} in use. Leases last {humanDuration(policy.leaseDurationSeconds)} and
          may spend up to {formatUsd(policy.spendCapUsd)} each.
        </Alert>
      )}
      <StartAgent />
      {error && <ErrorNotice error={error} title="Your leases could not be loaded" />}
      <Stack gap={0}>
        <ListTable<AgentLeaseFragment>
          rows={rows}
          flash={AGENT_FLASH}
          loading={fetching && !data}
          rowAttributes={(l) => ({ 'data-lease-id': l.id, 'data-status': l.status })}
          empty={
            <EmptyState title="No agents yet">
              Request a lease above to start your first agent on the shared provider.
            </EmptyState>
          }
          columns={[
            {
              accessor: 'agentId',
              title: 'Agent',
              render: (l) =>
                l.agentId ?? (
                  <Text span c="dimmed" size="sm">
                    {shortId(l.id)}
                  </Text>
                ),
            },
            { accessor: 'status', render: (l) => <LeaseStatusBadge status={l.status} /> },
            { accessor: 'provider', render: (l) => PROVIDER_NAMES[l.provider] },
            { accessor: 'framework', render: (l) => FRAMEWORK_NAMES[l.framework] },
            {
              accessor: 'expiresAt',
              title: 'Time left',
              render: (l) =>
                l.status === 'ACTIVE' || l.status === 'SUSPENDED' ? (
                  <RelativeTime value={l.expiresAt} size="sm" />
                ) : (
                  <Text span size="sm" c="dimmed">
                    ended {l.endReason ? `(${l.endReason})` : ''}
                  </Text>
                ),
            },
            {
              accessor: 'spend',
              title: 'Spend / cap',
              render: (l) => <SpendBar spent={l.usageUsd} limit={l.spendCapUsd} window="cap" compact />,
            },
            { accessor: 'requestCount', title: 'Requests', textAlign: 'right' },
            {
              accessor: 'actions',
              title: '',
              render: (l) =>
                l.status === 'ACTIVE' || l.status === 'SUSPENDED' ? (
                  <Group justify="flex-end">
                    <Button
                      size="xs"
                      variant="light"
                      color="red"
                      leftSection={<IconPlayerStop size={14} />}
                      onClick={() => setReleasing(l)}
                    >
                      Release
                    </Button>
                  </Group>
                ) : null,
            },
          ]}
        />
        <Pager connection={data?.leases} shown={rows.length} goTo={paging.goTo} noun="leases" />
      </Stack>
      {releasing && <ReleaseModal lease={releasing} onClose={() => setReleasing(null)} />}
    </Stack>
  );
}
