// Registers the cast through MPK's own services, as an admin would through the API: tier
// policies, the users' tiers, and the keys (their secrets known to the fake provider, which
// stands behind every one of them; the minting key's is the management key of the fake's
// OpenRouter-style key-management API).
import { randomBytes } from 'node:crypto';
import type { App } from '../server/app.js';
import type { Identity } from '../server/auth/authenticator.js';
import type { Tier } from '../server/db/enums.js';
import type { FakeKeyAdmin } from './fake-key-admin.js';
import type { FakeUpstream } from './fake-provider.js';
import { ADMIN, configOf, type DemoKey, KEYS, POLICIES, USERS } from './story.js';

export interface RegisteredKey {
  id: string;
  spec: DemoKey;
  /**
   * The provider key as the fake knows it; MPK holds it sealed and hands agents a lease token. A
   * MINT key's is the fake's management key: its leases spend on the keys MPK mints with it.
   */
  secret: string;
}

export const adminIdentity: Identity = { userId: ADMIN.id, email: ADMIN.email, role: 'ADMIN' };

export const userIdentity = (userId: string): Identity => {
  const user = USERS.find((u) => u.id === userId);
  if (!user) throw new Error(`No demo user ${userId}`);
  return { userId: user.id, email: user.email, role: 'USER' };
};

/** A secret in the shape of the provider's own keys, so the masked forms look familiar. */
export function secretFor(provider: DemoKey['provider']): string {
  const random = randomBytes(24).toString('hex');
  return provider === 'OPENROUTER' ? `sk-or-v1-${random}` : provider === 'VENICE' ? `vn-${random}` : `sk-${random}`;
}

export async function registerCast(app: App, fake: FakeUpstream, keyAdmin: FakeKeyAdmin): Promise<RegisteredKey[]> {
  const { tierPolicies, users, keys } = app.services;
  for (const [tier, policy] of Object.entries(POLICIES)) await tierPolicies.update(adminIdentity, tier as Tier, policy);
  for (const user of USERS) {
    await tierPolicies.setUserTier(adminIdentity, user.id, user.tier);
    await users.me(userIdentity(user.id));
  }
  const registered: RegisteredKey[] = [];
  for (const spec of KEYS) {
    const secret = spec.mode === 'MINT' ? keyAdmin.adminKey : secretFor(spec.provider);
    if (spec.mode !== 'MINT')
      fake.accounts.set(secret, {
        costStyle: spec.costStyle,
        creditLimitUsd: spec.creditLimitUsd,
        balanceUsd: spec.balanceUsd,
      });
    const key = await keys.create(adminIdentity, {
      provider: spec.provider,
      label: spec.label,
      apiKey: secret,
      // OpenRouter's and Venice's APIs live under /api/v1; an OpenAI-compatible gateway at its root.
      baseUrl: spec.provider === 'OPENAI_COMPATIBLE' ? fake.url : `${fake.url}/api/v1`,
      defaultModel: spec.defaultModel,
      fallbackModels: spec.fallbackModels,
      config: configOf(spec),
      dailyLimitUsd: spec.dailyLimitUsd,
      monthlyLimitUsd: spec.monthlyLimitUsd,
      maxActiveLeases: spec.maxActiveLeases,
      ...(spec.mode === 'MINT' ? { mode: spec.mode, maxMintedKeys: spec.maxMintedKeys } : {}),
    });
    registered.push({ id: key.id, spec, secret });
  }
  return registered;
}
