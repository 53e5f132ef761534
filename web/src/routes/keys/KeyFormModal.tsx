// Create or edit a key. Every BAD_USER_INPUT the server returns is shown at its field
// (`extensions.field`); the secret is typed into a password field and never shown back. The mode
// (SHARED or MINT) is chosen when the key is added: it decides what the secret is.
import {
  Button,
  Group,
  JsonInput,
  Modal,
  NumberInput,
  PasswordInput,
  SegmentedControl,
  Select,
  SimpleGrid,
  Stack,
  TagsInput,
  Text,
  TextInput,
} from '@mantine/core';
import { useForm } from '@mantine/form';
import { notifications } from '@mantine/notifications';
import { useEffect } from 'react';
import { useNavigate } from 'react-router';
import { useMutation } from 'urql';
import { ErrorNotice } from '../../components/ErrorNotice';
import type { KeyFormFieldsFragment, KeyMode, Provider } from '../../gql/graphql';
import { fieldErrors } from '../../lib/errors';
import { PROVIDER_NAMES } from '../../lib/format';
import { CreateKeyMutation, UpdateKeyMutation } from './documents';

interface Values {
  provider: Provider;
  mode: KeyMode;
  maxMintedKeys: number | string;
  label: string;
  apiKey: string;
  baseUrl: string;
  defaultModel: string;
  fallbackModels: string[];
  dailyLimitUsd: string;
  monthlyLimitUsd: string;
  maxActiveLeases: number | string;
  config: string;
}

const empty: Values = {
  provider: 'OPENROUTER',
  mode: 'SHARED',
  maxMintedKeys: '',
  label: '',
  apiKey: '',
  baseUrl: '',
  defaultModel: '',
  fallbackModels: [],
  dailyLimitUsd: '',
  monthlyLimitUsd: '',
  maxActiveLeases: '',
  config: '',
};

function fromKey(key: KeyFormFieldsFragment): Values {
  return {
    provider: key.provider,
    mode: key.mode,
    maxMintedKeys: key.maxMintedKeys ?? '',
    label: key.label,
    apiKey: '',
    baseUrl: key.baseUrl,
    defaultModel: key.defaultModel ?? '',
    fallbackModels: key.fallbackModels,
    dailyLimitUsd: key.dailyLimitUsd ?? '',
    monthlyLimitUsd: key.monthlyLimitUsd ?? '',
    maxActiveLeases: key.maxActiveLeases ?? '',
    config: key.config && Object.keys(key.config as object).length ? JSON.stringify(key.config, null, 2) : '',
  };
}

/** The form's text as API input: blanks are left out on create and clear the value on edit. */
function toInput(values: Values, editing: boolean) {
  const blank = editing ? null : undefined;
  const text = (value: string) => (value.trim() === '' ? blank : value.trim());
  let config: unknown = blank;
  if (values.config.trim()) config = JSON.parse(values.config);
  else if (editing) config = {};
  return {
    label: values.label.trim(),
    baseUrl: text(values.baseUrl) ?? undefined,
    defaultModel: text(values.defaultModel),
    fallbackModels: values.fallbackModels,
    dailyLimitUsd: text(values.dailyLimitUsd),
    monthlyLimitUsd: text(values.monthlyLimitUsd),
    maxActiveLeases: values.maxActiveLeases === '' ? blank : Number(values.maxActiveLeases),
    // Only a MINT key has minted keys to cap. Blank is the provider's default, on edit too: Venice's
    // 500 (the server's default when a key is added), none elsewhere.
    ...(values.mode === 'MINT'
      ? {
          maxMintedKeys:
            values.maxMintedKeys !== ''
              ? Number(values.maxMintedKeys)
              : editing && values.provider === 'VENICE'
                ? VENICE_MAX_MINTED_KEYS
                : blank,
        }
      : {}),
    config,
  };
}

/** What each mode means, said in the form where it is chosen. */
const MODE_WORDS: Record<KeyMode, string> = {
  SHARED: 'The key is lent as it is: every lease on it uses this same secret.',
  MINT:
    'The secret is a management key (OpenRouter) or an ADMIN key (Venice). Every lease gets a provider key ' +
    'of its own, made by MPK with the lease’s cap and expiry and deleted when the lease ends; ' +
    'this secret is never handed out.',
};

/** Venice allows 500 active API keys an account (server/keys/input.ts holds the same figure). */
const VENICE_MAX_MINTED_KEYS = 500;

/** Where the minted keys' cap comes from when none is given. */
const MINT_CAP_DEFAULT: Record<Provider, string> = {
  VENICE: `Venice default ${VENICE_MAX_MINTED_KEYS} (its per-account limit)`,
  OPENROUTER: 'no cap',
  OPENAI_COMPATIBLE: 'no cap',
};

export function KeyFormModal({
  opened,
  onClose,
  editing,
}: {
  opened: boolean;
  onClose: () => void;
  editing?: KeyFormFieldsFragment;
}) {
  const navigate = useNavigate();
  const [created, create] = useMutation(CreateKeyMutation);
  const [updated, update] = useMutation(UpdateKeyMutation);
  const result = editing ? updated : created;
  const form = useForm<Values>({
    initialValues: editing ? fromKey(editing) : empty,
    validate: {
      label: (v) => (v.trim() ? null : 'A label is required'),
      apiKey: (v) => (editing || v.trim() ? null : 'The provider API key is required'),
      config: (v) => {
        if (!v.trim()) return null;
        try {
          JSON.parse(v);
          return null;
        } catch {
          return 'Not valid JSON';
        }
      },
    },
  });

  // Open with the key as it is now; keep what is typed while open (a live update of the key must
  // not overwrite it).
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs on opening only, by design
  useEffect(() => {
    if (opened) form.setValues(editing ? fromKey(editing) : empty);
  }, [opened]);

  async function submit(values: Values) {
    const input = toInput(values, Boolean(editing));
    const res = editing
      ? await update({ id: editing.id, input })
      : await create({
          input: {
            ...input,
            provider: values.provider,
            mode: values.mode,
            apiKey: values.apiKey.trim(),
            fallbackModels: input.fallbackModels,
          },
        });
    if (res.error) {
      form.setErrors(fieldErrors(res.error));
      return;
    }
    form.setFieldValue('apiKey', '');
    onClose();
    notifications.show({
      color: 'teal',
      message: editing ? `Saved ${values.label}` : `Added ${values.label} to the pool`,
    });
    const id = res.data && ('createManagedKey' in res.data ? res.data.createManagedKey.id : undefined);
    if (id) navigate(`/keys/${id}`);
  }

  const providerDefault =
    form.values.provider === 'OPENAI_COMPATIBLE' ? 'required for OpenAI-compatible' : 'provider default';
  return (
    <Modal
      opened={opened}
      onClose={onClose}
      title={editing ? `Edit ${editing.label}` : 'Add a provider key'}
      size="lg"
      centered
    >
      <form onSubmit={form.onSubmit(submit)} noValidate>
        <Stack gap="sm">
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <Select
              label="Provider"
              data={Object.entries(PROVIDER_NAMES).map(([value, label]) => ({ value, label }))}
              allowDeselect={false}
              disabled={Boolean(editing)}
              {...form.getInputProps('provider')}
            />
            <TextInput label="Label" required placeholder="pool-1" {...form.getInputProps('label')} />
          </SimpleGrid>
          <Stack gap={4}>
            <Text size="sm" fw={500} id="key-mode-label">
              Mode
            </Text>
            <SegmentedControl
              aria-labelledby="key-mode-label"
              data={[
                { value: 'SHARED', label: 'SHARED: lend this key' },
                { value: 'MINT', label: 'MINT: a provider key per lease' },
              ]}
              disabled={Boolean(editing)}
              {...form.getInputProps('mode')}
            />
            <Text size="xs" c="dimmed" data-testid="key-mode-words">
              {MODE_WORDS[form.values.mode]}
              {editing && ' The mode is chosen when the key is added.'}
            </Text>
          </Stack>
          {form.values.mode === 'MINT' && form.values.provider === 'OPENAI_COMPATIBLE' && (
            <Text size="sm" c="red.9" role="alert">
              Only OpenRouter and Venice keys can mint provider keys.
            </Text>
          )}
          {!editing && (
            <PasswordInput
              label={form.values.mode === 'MINT' ? 'Management / admin key' : 'API key'}
              required
              description="Sealed at rest; only its masked form is ever shown."
              autoComplete="off"
              {...form.getInputProps('apiKey')}
            />
          )}
          <TextInput label="Base URL" placeholder={providerDefault} {...form.getInputProps('baseUrl')} />
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput label="Default model" placeholder="provider default" {...form.getInputProps('defaultModel')} />
            <TagsInput
              label="Fallback models"
              placeholder="type and press Enter"
              {...form.getInputProps('fallbackModels')}
            />
          </SimpleGrid>
          {form.values.mode === 'MINT' && (
            <NumberInput
              label="Max minted keys"
              description="Provider keys alive at once for this key's leases; a grant beyond is refused (NO_KEY_AVAILABLE)."
              placeholder={MINT_CAP_DEFAULT[form.values.provider]}
              allowDecimal={false}
              min={1}
              {...form.getInputProps('maxMintedKeys')}
            />
          )}
          <SimpleGrid cols={{ base: 1, sm: 3 }}>
            <TextInput
              label="Daily limit (USD, UTC day)"
              placeholder="no limit"
              inputMode="decimal"
              {...form.getInputProps('dailyLimitUsd')}
            />
            <TextInput
              label="Monthly limit (USD, UTC month)"
              placeholder="no limit"
              inputMode="decimal"
              {...form.getInputProps('monthlyLimitUsd')}
            />
            <NumberInput
              label="Max active leases"
              placeholder="no cap"
              allowDecimal={false}
              {...form.getInputProps('maxActiveLeases')}
            />
          </SimpleGrid>
          <JsonInput
            label="Config"
            description={
              '{ "frameworks": { "OPENCLAW": {…} }, "prices": { "model": { "prompt": "0.5", "completion": "1.5" } }, ' +
              '"delivery": "PROXY" }'
            }
            autosize
            minRows={3}
            maxRows={10}
            formatOnBlur
            {...form.getInputProps('config')}
          />
          {result.error && !Object.keys(fieldErrors(result.error)).length && <ErrorNotice error={result.error} />}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={result.fetching}>
              {editing ? 'Save' : 'Add key'}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
