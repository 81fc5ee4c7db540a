import { randomInt } from 'node:crypto';

/**
 * Readable names for runs created without one (`brisk-heron-417`), as MLflow gives every run a
 * name so lists and charts have something better than a hex id to show.
 */
const ADJECTIVES = [
  'amber', 'bold', 'brisk', 'calm', 'clever', 'crisp', 'dapper', 'eager', 'fancy', 'gentle',
  'glossy', 'golden', 'hardy', 'humble', 'jolly', 'keen', 'lively', 'lucid', 'merry', 'mellow',
  'nimble', 'noble', 'orderly', 'patient', 'placid', 'plucky', 'quiet', 'rapid', 'rustic', 'serene',
  'sharp', 'silent', 'sleek', 'smooth', 'snappy', 'steady', 'sunny', 'swift', 'tidy', 'vivid',
  'warm', 'wise', 'witty', 'zesty',
] as const;

const NOUNS = [
  'badger', 'bison', 'crane', 'dolphin', 'eagle', 'falcon', 'ferret', 'finch', 'fox', 'gazelle',
  'gecko', 'heron', 'ibis', 'jackal', 'koala', 'lark', 'lemur', 'lynx', 'marten', 'moose',
  'newt', 'ocelot', 'otter', 'owl', 'panda', 'pelican', 'puffin', 'quail', 'raven', 'robin',
  'salmon', 'seal', 'sparrow', 'stork', 'swan', 'tapir', 'trout', 'viper', 'walrus', 'wren',
  'yak', 'zebra',
] as const;

/** A random `adjective-noun-NNN` run name. */
export function randomRunName(): string {
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}-${NOUNS[randomInt(NOUNS.length)]}-${randomInt(1000)}`;
}
