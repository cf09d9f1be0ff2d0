variable "name" {}

variable "domain" {}

variable "public_instances" {}

variable "vhosts" {
  default = null
}

variable "domain_tag" {
  default = null
}

variable "vhost_tag" {
  default = null
}

output "hostnames" {
  value = [for name, _ in var.public_instances : "${name}.${var.name}.${var.domain}"]
}
