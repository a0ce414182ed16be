/**
 * The training loop: while playing, one callback per animation frame (which runs a few optimization steps and
 * redraws), and a frames-per-second meter over the last second of playing.
 */
export class Loop {
  private playingNow = false;
  private handle = 0;
  private recent: number[] = [];
  private frames = 0;
  private playedMs = 0;
  private lastTime: number | null = null;

  constructor(private readonly onFrame: () => void, private readonly onPlayingChange: (playing: boolean) => void = () => {}) {}

  get playing(): boolean {
    return this.playingNow;
  }

  play(): void {
    if (this.playingNow) return;
    this.playingNow = true;
    this.lastTime = null;
    this.recent = [];
    this.onPlayingChange(true);
    this.handle = requestAnimationFrame(this.tick);
  }

  pause(): void {
    if (!this.playingNow) return;
    this.playingNow = false;
    cancelAnimationFrame(this.handle);
    this.onPlayingChange(false);
  }

  toggle(): void {
    if (this.playingNow) this.pause();
    else this.play();
  }

  /** Frames per second over the last second of playing (0 when paused or not yet measured). */
  fps(): number {
    if (!this.playingNow || this.recent.length < 2) return 0;
    const span = this.recent[this.recent.length - 1] - this.recent[0];
    return span > 0 ? ((this.recent.length - 1) * 1000) / span : 0;
  }

  /** Frames drawn and milliseconds spent playing since the page loaded (the mean FPS is their ratio). */
  totals(): { frames: number; ms: number } {
    return { frames: this.frames, ms: this.playedMs };
  }

  private tick = (now: number): void => {
    if (!this.playingNow) return;
    if (this.lastTime !== null) this.playedMs += now - this.lastTime;
    this.lastTime = now;
    this.frames++;
    this.recent.push(now);
    while (this.recent.length > 2 && now - this.recent[0] > 1000) this.recent.shift();
    try {
      this.onFrame();
    } finally {
      if (this.playingNow) this.handle = requestAnimationFrame(this.tick);
    }
  };
}
