import type { CloneTarget } from '../../core/placement.js';

/**
 * Tags on every dedicated resource (instance, service, access point, secret): the clone id is
 * what makes a retry adopt its own resource and refuse another's, and what IAM conditions on.
 */
export const INSTANCE_TAGS = {
  cloneId: 'clonefactory:clone-id',
  tenantId: 'clonefactory:tenant-id',
  managedBy: 'clonefactory:managed-by',
} as const;

export function instanceTags(target: CloneTarget): { Key: string; Value: string }[] {
  return [
    { Key: INSTANCE_TAGS.cloneId, Value: target.cloneId },
    { Key: INSTANCE_TAGS.tenantId, Value: target.tenantId },
    { Key: INSTANCE_TAGS.managedBy, Value: 'clonefactory' },
  ];
}

/** The clone id a resource is tagged with, from AWS's `{ Key, Value }` or ECS's `{ key, value }` tags. */
export function ownerOf(
  tags: readonly { Key?: string; Value?: string; key?: string; value?: string }[] | undefined,
): string | undefined {
  const tag = tags?.find((t) => (t.Key ?? t.key) === INSTANCE_TAGS.cloneId);
  return tag ? (tag.Value ?? tag.value) : undefined;
}
