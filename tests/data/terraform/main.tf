variable "instances" {}
variable "volumes" {}

module "cluster" {
  source    = "./cluster"
  instances = var.instances
  volumes   = var.volumes
}

output "instances" {
  value = module.cluster.instances
}
