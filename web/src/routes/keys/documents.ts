// The key pages' operations.
import { graphql } from '../../gql';

export const KeysPageQuery = graphql(`
  query KeysPage($first: Int, $after: String, $last: Int, $before: String, $provider: Provider, $status: KeyStatus) {
    managedKeys(first: $first, after: $after, last: $last, before: $before, provider: $provider, status: $status) {
      totalCount
      totalCountIsEstimate
      pageInfo {
        ...Paging
      }
      edges {
        node {
          ...KeyRow
          ...KeyFormFields
        }
      }
    }
  }
`);

export const KeyFormFieldsFragment = graphql(`
  fragment KeyFormFields on ManagedKey {
    id
    provider
    label
    baseUrl
    defaultModel
    fallbackModels
    dailyLimitUsd
    monthlyLimitUsd
    maxActiveLeases
    mode
    maxMintedKeys
    config
  }
`);

export const CreateKeyMutation = graphql(`
  mutation CreateKey($input: CreateManagedKeyInput!) {
    createManagedKey(input: $input) {
      ...KeyRow
      ...KeyFormFields
    }
  }
`);

export const UpdateKeyMutation = graphql(`
  mutation UpdateKey($id: ID!, $input: UpdateManagedKeyInput!) {
    updateManagedKey(id: $id, input: $input) {
      ...KeyRow
      ...KeyFormFields
    }
  }
`);

export const DisableKeyMutation = graphql(`
  mutation DisableKey($id: ID!, $reason: String) {
    disableManagedKey(id: $id, reason: $reason) {
      ...KeyRow
    }
  }
`);

export const EnableKeyMutation = graphql(`
  mutation EnableKey($id: ID!) {
    enableManagedKey(id: $id) {
      ...KeyRow
    }
  }
`);

export const RotateKeyMutation = graphql(`
  mutation RotateKey($id: ID!, $apiKey: String!) {
    rotateManagedKeySecret(id: $id, apiKey: $apiKey) {
      ...KeyRow
    }
  }
`);

/** What disabling a key will end: its active leases (on the row) and its suspended ones. */
export const SuspendedOnKeyQuery = graphql(`
  query SuspendedOnKey($keyId: ID!) {
    leases(keyId: $keyId, status: SUSPENDED, first: 0) {
      totalCount
      totalCountIsEstimate
    }
  }
`);

export const KeyDetailQuery = graphql(`
  query KeyDetail($id: ID!) {
    managedKey(id: $id) {
      ...KeyRow
      ...KeyFormFields
      remainingTodayUsd
      remainingThisMonthUsd
      updatedAt
      providerUsage {
        checkedAt
        error
        usageTodayUsd
        usageThisMonthUsd
        limitUsd
        limitRemainingUsd
        balanceUsd
        driftTodayUsd
        driftThisMonthUsd
      }
    }
    daily: spendSeries(keyId: $id, days: 30, groupBy: DAY) {
      day
      costUsd
      requests
    }
    byModel: spendSeries(keyId: $id, days: 30, groupBy: MODEL) {
      model
      costUsd
      requests
      promptTokens
      completionTokens
    }
    leases(keyId: $id, first: 20) {
      totalCount
      totalCountIsEstimate
      pageInfo {
        ...Paging
      }
      edges {
        cursor
        node {
          ...LeaseRow
        }
      }
    }
    auditLog(targetId: $id, first: 20) {
      totalCount
      totalCountIsEstimate
      edges {
        node {
          id
          at
          actorId
          actorRole
          action
          details
        }
      }
    }
  }
`);
