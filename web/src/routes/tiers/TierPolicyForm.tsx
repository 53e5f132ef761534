// Edit one tier's policy. The server holds the rules (ranges, decimals); each BAD_USER_INPUT it
// returns is shown at its field, in the field's own words. Only changed fields are sent. Mounted
// when opened, so each opening starts from the policy as it is now.
import { Button, Group, List, Modal, NumberInput, Stack, Text, TextInput } from '@mantine/core';
import { useForm } from '@mantine/form';
import { notifications } from '@mantine/notifications';
import { useMutation } from 'urql';
import { ErrorNotice } from '../../components/ErrorNotice';
import type { TierPolicyFieldsFragment, TierPolicyInput } from '../../gql/graphql';
import { fieldErrors } from '../../lib/errors';
import { formatUsdExact } from '../../lib/format';
import { agents, DURATION_PRESETS, humanDuration } from '../../lib/policy';
import { UpdateTierPolicyMutation } from './documents';

interface Values {
  leaseDurationSeconds: number | string;
  maxActiveLeases: number | string;
  spendCapUsd: string;
  /** Blank: no limit. */
  requestsPerMinute: number | string;
}

const LABELS: Record<keyof Values, string> = {
  leaseDurationSeconds: 'Lease length',
  maxActiveLeases: 'Agent limit',
  spendCapUsd: 'Spend cap per lease',
  requestsPerMinute: 'Request rate per lease',
};

const fromPolicy = (p: TierPolicyFieldsFragment): Values => ({
  leaseDurationSeconds: p.leaseDurationSeconds,
  maxActiveLeases: p.maxActiveLeases,
  spendCapUsd: p.spendCapUsd,
  requestsPerMinute: p.requestsPerMinute ?? '',
});

/** The server's message with the field's label in place of its API name (and seconds made readable). */
function inWords(field: string, message: string): string {
  const label = LABELS[field as keyof Values];
  let words = label ? message.replace(new RegExp(`^${field}\\b`), label) : message;
  if (field === 'leaseDurationSeconds') {
    words = words.replace(/from (\d+) to (\d+)$/, (_, a: string, b: string) => {
      const [from, to] = [Number(a), Number(b)];
      return (
        `from ${from.toLocaleString('en-US')} to ${to.toLocaleString('en-US')} seconds ` +
        `(${humanDuration(from)} to ${humanDuration(to)})`
      );
    });
  }
  return words;
}

const wholeNumber = (label: string) => (v: number | string) =>
  v === '' || !Number.isInteger(Number(v)) ? `${label} must be a whole number` : null;

/** The fields that differ from the policy as it is, as API input (a blank number is left to validation). */
function changesOf(values: Values, policy: TierPolicyFieldsFragment): TierPolicyInput {
  const input: TierPolicyInput = {};
  if (values.leaseDurationSeconds !== '' && Number(values.leaseDurationSeconds) !== policy.leaseDurationSeconds)
    input.leaseDurationSeconds = Number(values.leaseDurationSeconds);
  if (values.maxActiveLeases !== '' && Number(values.maxActiveLeases) !== policy.maxActiveLeases)
    input.maxActiveLeases = Number(values.maxActiveLeases);
  const cap = values.spendCapUsd.trim().replace(/^\$/, '');
  if (cap === '' || Number(cap) !== Number(policy.spendCapUsd)) input.spendCapUsd = cap;
  // Blank clears the limit (null); a number sets it.
  const rate = values.requestsPerMinute === '' ? null : Number(values.requestsPerMinute);
  if (rate !== (policy.requestsPerMinute ?? null)) input.requestsPerMinute = rate;
  return input;
}

/** A typed amount exactly as the server would store it, or as typed when it is not a plain decimal. */
const exactOrAsTyped = (text: string) => (/^\d+(\.\d+)?$/.test(text) ? formatUsdExact(text) : `$${text}`);

function describeChanges(input: TierPolicyInput, policy: TierPolicyFieldsFragment): string[] {
  const lines: string[] = [];
  if (
    input.leaseDurationSeconds !== undefined &&
    input.leaseDurationSeconds !== null &&
    Number.isFinite(input.leaseDurationSeconds)
  ) {
    lines.push(
      `Lease length: ${humanDuration(policy.leaseDurationSeconds)} → ${humanDuration(input.leaseDurationSeconds)}`,
    );
  }
  if (input.maxActiveLeases !== undefined && input.maxActiveLeases !== null && Number.isFinite(input.maxActiveLeases)) {
    lines.push(`Agent limit: ${agents(policy.maxActiveLeases)} → ${agents(input.maxActiveLeases)}`);
  }
  if (
    input.spendCapUsd !== undefined &&
    input.spendCapUsd !== null &&
    input.spendCapUsd !== '' &&
    Number.isFinite(Number(input.spendCapUsd))
  ) {
    lines.push(
      `Spend cap per lease: ${formatUsdExact(policy.spendCapUsd)} → ${exactOrAsTyped(String(input.spendCapUsd))}`,
    );
  }
  if (
    input.requestsPerMinute !== undefined &&
    (input.requestsPerMinute === null || Number.isFinite(input.requestsPerMinute))
  ) {
    lines.push(
      `Request rate per lease: ${perMinute(policy.requestsPerMinute)} → ${perMinute(input.requestsPerMinute)}`,
    );
  }
  return lines;
}

const perMinute = (rate: number | null | undefined) =>
  rate == null ? 'no limit' : `${rate.toLocaleString('en-US')} a minute`;

export function TierPolicyForm({
  policy,
  users,
  opened,
  onClose,
}: {
  policy: TierPolicyFieldsFragment;
  users: number | undefined;
  opened: boolean;
  onClose: () => void;
}) {
  const [result, update] = useMutation(UpdateTierPolicyMutation);
  const form = useForm<Values>({
    initialValues: fromPolicy(policy),
    validate: {
      leaseDurationSeconds: wholeNumber(LABELS.leaseDurationSeconds),
      maxActiveLeases: wholeNumber(LABELS.maxActiveLeases),
      requestsPerMinute: (v) => (v === '' ? null : wholeNumber(LABELS.requestsPerMinute)(v)),
      spendCapUsd: (v) => (v.trim() ? null : `${LABELS.spendCapUsd} is required`),
    },
  });

  const input = changesOf(form.values, policy);
  const changes = describeChanges(input, policy);
  const unchanged = Object.keys(input).length === 0;

  async function submit(values: Values) {
    const res = await update({ tier: policy.tier, input: changesOf(values, policy) });
    if (res.error) {
      const errors = fieldErrors(res.error);
      form.setErrors(
        Object.fromEntries(Object.entries(errors).map(([field, message]) => [field, inWords(field, message)])),
      );
      return;
    }
    onClose();
    notifications.show({
      color: 'teal',
      message: `${policy.tier} policy saved. New ${policy.tier} leases follow it; current leases keep their terms.`,
    });
  }

  const seconds = Number(form.values.leaseDurationSeconds);
  const stray = result.error && !Object.keys(fieldErrors(result.error)).some((f) => f in LABELS);
  return (
    <Modal
      opened={opened}
      onClose={onClose}
      title={`Edit the ${policy.tier} policy`}
      centered
      size="md"
      closeButtonProps={{ 'aria-label': 'Close' }}
    >
      <form onSubmit={form.onSubmit(submit)} noValidate>
        <Stack gap="sm">
          <Text size="sm">
            Applies to <b>new</b> {policy.tier} leases only
            {users === undefined
              ? ''
              : ` (${users.toLocaleString('en-US')} ${users === 1 ? 'user is' : 'users are'} on ${policy.tier})`}
            . Leases already granted keep the length and spend cap they were granted with.
          </Text>
          <div>
            <NumberInput
              label="Lease length (seconds)"
              description={
                form.values.leaseDurationSeconds === '' || !Number.isFinite(seconds)
                  ? 'How long a lease lasts before it expires'
                  : `= ${humanDuration(seconds)}`
              }
              allowDecimal={false}
              allowNegative={false}
              thousandSeparator=","
              data-autofocus
              {...form.getInputProps('leaseDurationSeconds')}
            />
            <Group gap={6} mt={6} role="group" aria-label="Lease length presets">
              {DURATION_PRESETS.map((preset) => (
                <Button
                  key={preset.seconds}
                  size="compact-xs"
                  variant={seconds === preset.seconds ? 'filled' : 'light'}
                  aria-pressed={seconds === preset.seconds}
                  onClick={() => form.setFieldValue('leaseDurationSeconds', preset.seconds)}
                >
                  {preset.label}
                </Button>
              ))}
            </Group>
          </div>
          <NumberInput
            label="Agent limit (active leases per user)"
            description="0 lets this tier start no agent at all"
            allowDecimal={false}
            thousandSeparator=","
            {...form.getInputProps('maxActiveLeases')}
          />
          <TextInput
            label="Spend cap per lease (USD)"
            description="A lease that reaches it is suspended until an admin raises its cap"
            inputMode="decimal"
            leftSection="$"
            {...form.getInputProps('spendCapUsd')}
          />
          <NumberInput
            label="Request rate per lease (requests a minute)"
            description="Through the metering proxy, per server instance; blank for no limit"
            placeholder="No limit"
            allowDecimal={false}
            allowNegative={false}
            thousandSeparator=","
            {...form.getInputProps('requestsPerMinute')}
          />
          {changes.length > 0 && (
            <Stack gap={4}>
              <Text size="sm" fw={500}>
                Changes
              </Text>
              <List size="sm" spacing={2}>
                {changes.map((line) => (
                  <List.Item key={line}>{line}</List.Item>
                ))}
              </List>
            </Stack>
          )}
          {result.error && stray && <ErrorNotice error={result.error} />}
          <Group justify="flex-end" gap="xs">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={result.fetching} disabled={unchanged}>
              Save policy
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
