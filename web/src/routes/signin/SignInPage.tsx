// Sign-in: paste a bearer token, or, while the server runs on its development secret and this
// browser is on the same machine, sign in for development as any role.
import {
  Alert,
  Button,
  Card,
  Center,
  Divider,
  Group,
  PasswordInput,
  Select,
  Stack,
  Text,
  TextInput,
  Title,
} from '@mantine/core';
import { IconAlertTriangle, IconKey } from '@tabler/icons-react';
import { useEffect, useState } from 'react';
import { signIn } from '../../session';

interface DevOffer {
  roles: string[];
  expiresInSeconds: number;
  suggestions: { role: string; sub: string }[];
}

function DevSignIn({ offer }: { offer: DevOffer }) {
  const [role, setRole] = useState('ADMIN');
  const [sub, setSub] = useState(offer.suggestions.find((s) => s.role === 'ADMIN')?.sub ?? 'dev-admin');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  async function go() {
    setBusy(true);
    setError('');
    try {
      const res = await fetch('/api/dev-sign-in', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ role, sub }),
      });
      const body = (await res.json()) as { token?: string; error?: string };
      if (!res.ok || !body.token) throw new Error(body.error ?? `the server answered ${res.status}`);
      signIn(body.token);
    } catch (e) {
      setError(`Development sign-in failed: ${(e as Error).message}`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Stack gap="xs">
      <Divider label="or, on this machine" labelPosition="center" />
      <Text size="sm" c="dimmed">
        The server runs on its generated development secret: it mints short tokens (
        {Math.round(offer.expiresInSeconds / 60)} min) for this browser.
      </Text>
      <Group grow align="flex-end">
        <Select
          label="Role"
          data={offer.roles}
          value={role}
          allowDeselect={false}
          onChange={(value) => {
            const next = value ?? 'ADMIN';
            setRole(next);
            setSub(offer.suggestions.find((s) => s.role === next)?.sub ?? sub);
          }}
        />
        <TextInput label="Subject (user id)" value={sub} onChange={(e) => setSub(e.currentTarget.value)} />
      </Group>
      {error && (
        <Text size="sm" c="red.9" role="alert">
          {error}
        </Text>
      )}
      <Button variant="light" onClick={go} loading={busy} disabled={!sub.trim()}>
        Sign in for development as {role}/{sub.trim() || '…'}
      </Button>
    </Stack>
  );
}

export function SignInPage({ reason }: { reason: string }) {
  const [token, setToken] = useState('');
  const [offer, setOffer] = useState<DevOffer | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    fetch('/api/dev-sign-in', { signal: controller.signal })
      .then(async (res) => (res.ok ? setOffer((await res.json()) as DevOffer) : setOffer(null)))
      .catch(() => setOffer(null));
    return () => controller.abort();
  }, []);

  return (
    <Center mih="100vh" p="md" component="main">
      <Card withBorder shadow="sm" radius="md" p="xl" w={480}>
        <Stack gap="md">
          <Stack gap={2}>
            <Title order={1} size="h2">
              MPK
            </Title>
            <Text c="dimmed" size="sm">
              Managed Provider Keys — sign in with a bearer token
            </Text>
          </Stack>
          {reason && (
            <Alert
              color="red"
              variant="light"
              icon={<IconAlertTriangle size={18} />}
              role="alert"
              data-testid="signin-reason"
            >
              <Text size="sm" c="red.9">
                {reason}
              </Text>
            </Alert>
          )}
          <form
            onSubmit={(event) => {
              event.preventDefault();
              if (token.trim()) signIn(token);
            }}
          >
            <Stack gap="xs">
              <PasswordInput
                label="Bearer token"
                description="A JWT for this server. Developers: npm run -s token -- --role admin --sub you"
                placeholder="eyJhbGciOi…"
                value={token}
                onChange={(e) => setToken(e.currentTarget.value)}
                leftSection={<IconKey size={16} />}
                autoComplete="off"
              />
              <Button type="submit" disabled={!token.trim()}>
                Sign in
              </Button>
            </Stack>
          </form>
          {offer && <DevSignIn offer={offer} />}
        </Stack>
      </Card>
    </Center>
  );
}
