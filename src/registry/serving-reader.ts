/**
 * The registry as serving reads it (`RegistryReader`): which version a selector names now, the
 * traffic split, the generation counter other replicas poll, and in-process change events.
 */
import { badRequest } from '../platform/errors.ts';
import type { ModelsService } from './models.service.ts';
import { registryRepository as repo, type ModelVersionRow } from './registry.repository.ts';
import { aliasTarget, parseJsonObject, parseSplit, toServable, toVersion, type RegistryContext } from './registry.shared.ts';
import type { RegistryReader, ServableVersion, TrafficSplit, VersionSelector } from './registry.types.ts';

export class RegistryServingReader implements RegistryReader {
  constructor(
    private readonly ctx: RegistryContext,
    private readonly models: ModelsService,
  ) {}

  private get db() {
    return this.ctx.store.db;
  }

  // ---------------------------------------------------------------- RegistryReader

  /** {@inheritDoc RegistryReader.resolve} */
  async resolve(name: string, selector: VersionSelector): Promise<ServableVersion | undefined> {
    const given = [selector.version, selector.stage, selector.alias].filter((s) => s !== undefined).length;
    if (given > 1) throw badRequest('give at most one of version, stage and alias');
    let row: ModelVersionRow | undefined;
    if (selector.version !== undefined) row = await repo.findVersion(this.db, name, selector.version);
    else if (selector.stage !== undefined) row = await repo.latestVersion(this.db, name, selector.stage);
    else if (selector.alias !== undefined) {
      const version = await aliasTarget(this.db, name, selector.alias);
      row = version === undefined ? undefined : await repo.findVersion(this.db, name, version);
    } else row = await repo.latestVersion(this.db, name);
    if (row === undefined) return undefined;
    const [aliases, model] = await Promise.all([repo.aliasesOfVersion(this.db, name, row.version), repo.findModel(this.db, name)]);
    const v = toVersion(row, aliases);
    return { ...toServable(v), modelTags: model === undefined ? {} : parseJsonObject(model.tags) };
  }

  /** {@inheritDoc RegistryReader.traffic} */
  async traffic(name: string): Promise<TrafficSplit | undefined> {
    const row = await repo.findTraffic(this.db, name);
    return row === undefined ? undefined : parseSplit(row.split);
  }

  /** {@inheritDoc RegistryReader.generation} */
  async generation(): Promise<number> {
    return repo.generation(this.db);
  }

  /** {@inheritDoc RegistryReader.onChange} */
  onChange(listener: (modelName: string) => void): () => void {
    return this.ctx.events.on(listener);
  }

  /** {@inheritDoc RegistryReader.modelExists} */
  async modelExists(name: string): Promise<boolean> {
    return (await repo.findModel(this.db, name)) !== undefined;
  }

  /** {@inheritDoc RegistryReader.getReference} */
  getReference(name: string, version: number): Promise<unknown> {
    return this.models.getReference(name, version);
  }
}
