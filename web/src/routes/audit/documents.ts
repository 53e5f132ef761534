// The audit page's operations.
import { graphql } from '../../gql';

export const AuditRowFragment = graphql(`
  fragment AuditRow on AuditEntry {
    id
    at
    actorId
    actorRole
    action
    targetType
    targetId
    details
  }
`);

export const AuditPageQuery = graphql(`
  query AuditPage(
    $first: Int
    $after: String
    $last: Int
    $before: String
    $actorId: String
    $action: String
    $targetType: String
    $targetId: ID
  ) {
    auditLog(
      first: $first
      after: $after
      last: $last
      before: $before
      actorId: $actorId
      action: $action
      targetType: $targetType
      targetId: $targetId
    ) {
      totalCount
      totalCountIsEstimate
      pageInfo {
        ...Paging
      }
      edges {
        node {
          ...AuditRow
        }
      }
    }
  }
`);
